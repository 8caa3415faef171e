//! HTTP API tests: every request goes through the real router, on SQLite and
//! on MariaDB.

mod support;

mod smoke;
