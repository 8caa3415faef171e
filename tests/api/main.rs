//! HTTP API tests: every request goes through the real router, on SQLite and
//! on MariaDB.

mod support;

mod articles;
mod cache;
mod comments;
mod connections;
mod errors;
mod feeds;
mod logs;
mod metrics;
mod migration;
mod openapi;
mod ops;
mod queries;
mod ratelimit;
mod replicas;
mod sign_in;
mod smoke;
mod tags;
mod tls;
mod tokens;
mod users;
