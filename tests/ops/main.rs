//! Operations tests against the built binary: the ops address and the
//! request log of `feedgate serve`, the local cluster script through its
//! front, and Swagger UI rendered offline in headless Chromium.

mod support;

mod cluster;
mod deploy_files;
mod docs;
mod serve;
