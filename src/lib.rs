//! feedgate: a cached article API.
//!
//! Reads flow `http` → `reads` (finished JSON entries, through `cache`) →
//! `store`; writes flow `http` → `writes` (which names what each write makes
//! stale) → `store`. `domain` holds the nouns and rules, `auth` identity,
//! `config` settings, `views` the JSON shapes, `labels` the names metrics
//! and logs give tiers, routes and read targets.

pub mod app;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod labels;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod reads;
pub mod redis_link;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod views;
pub mod writes;
