//! Request rate limits: GCRA buckets per client or user, in process
//! (governor) and, for writes and sign-ins, shared by every instance through
//! Redis. Reads never wait on Redis; a Redis that fails hands its work to
//! the in-process buckets.
//!
//! governor is used directly rather than through tower_governor's layer:
//! that layer keys only on request parts (not the username in a sign-in
//! body), answers with its own body and `x-ratelimit-*` headers, cannot
//! defer to a shared store, and its forwarding-aware key extractor believes
//! `X-Forwarded-For` from any client.

mod client;
mod local;
mod shared;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::config::{LimitSettings, RateLimitSettings, RedisSettings};
use local::LocalBuckets;
use shared::SharedBuckets;

/// What a request is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Safe methods, per client (or user).
    Read,
    /// Unsafe methods, per user (or client).
    Write,
    /// `POST /tokens` per client.
    TokenClient,
    /// `POST /tokens` per username.
    TokenUsername,
    /// `POST /users` per client.
    Signup,
}

impl Class {
    const ALL: [Class; 5] = [
        Class::Read,
        Class::Write,
        Class::TokenClient,
        Class::TokenUsername,
        Class::Signup,
    ];

    fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::TokenClient => "token_client",
            Class::TokenUsername => "token_username",
            Class::Signup => "signup",
        }
    }

    fn settings(self, settings: &RateLimitSettings) -> LimitSettings {
        match self {
            Class::Read => settings.read,
            Class::Write => settings.write,
            Class::TokenClient => settings.token_client,
            Class::TokenUsername => settings.token_username,
            Class::Signup => settings.signup,
        }
    }
}

/// One bucket's verdict, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's size (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Until the bucket is full again (`RateLimit-Reset`).
    pub reset: Duration,
    /// Until the next request may pass (`Retry-After`); zero if allowed.
    pub retry_after: Duration,
}

impl Decision {
    /// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`, and
    /// when refused `Retry-After` (whole seconds, rounded up).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
        const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
        const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RESET, HeaderValue::from(whole_seconds(self.reset)));
        if !self.allowed {
            let retry_after = whole_seconds(self.retry_after).max(1);
            headers.insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(retry_after),
            );
        }
    }
}

fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Whose bucket a request is counted in. Built on every request, so it is
/// plain data; spelt out (`u:42`, `ip:10.0.0.1`, a username's hash) only for
/// a bucket kept in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    User(i64),
    Client(IpAddr),
    /// A username, by a hash that keeps neither its case nor its length:
    /// usernames are case-insensitive, and any string may be sent.
    Username(u64),
}

impl Bucket {
    pub fn username(username: &str) -> Self {
        let digest = Sha256::digest(username.to_lowercase().as_bytes());
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        Bucket::Username(u64::from_be_bytes(first))
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bucket::User(id) => write!(f, "u:{id}"),
            Bucket::Client(ip) => write!(f, "ip:{ip}"),
            Bucket::Username(hash) => write!(f, "{hash:016x}"),
        }
    }
}

/// The GCRA parameters of one limit.
#[derive(Debug, Clone, Copy)]
struct Rate {
    limit: u32,
    /// One request's share of the window: the bucket refills one per this.
    interval: Duration,
}

impl Rate {
    fn new(settings: LimitSettings) -> Self {
        let limit = settings.limit.max(1);
        let window = Duration::from_secs(settings.window_secs.max(1));
        Self {
            limit,
            interval: (window / limit).max(Duration::from_micros(1)),
        }
    }
}

/// Every bucket of the process.
pub struct RateLimiter {
    trusted_proxies: Vec<IpNet>,
    rates: [Rate; 5],
    local: LocalBuckets,
    shared: Option<SharedBuckets>,
}

impl RateLimiter {
    /// With a Redis URL, all but read limits are shared through Redis under
    /// `{prefix}:rl:`; every Redis call gives up after `timeout`.
    pub fn new(
        settings: &RateLimitSettings,
        trusted_proxies: Vec<IpNet>,
        redis: &RedisSettings,
        prefix: &str,
        timeout: Duration,
    ) -> Self {
        let rates = Class::ALL.map(|class| Rate::new(class.settings(settings)));
        let shared = (!redis.url.is_empty())
            .then(|| SharedBuckets::new(redis, prefix, timeout))
            .flatten();
        Self {
            trusted_proxies,
            local: LocalBuckets::new(&rates),
            rates,
            shared,
        }
    }

    /// The client's address: the socket peer, or what trusted proxies say.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        client::client_ip(peer, headers, &self.trusted_proxies)
    }

    /// Takes one request from `class`'s bucket for `key`.
    pub async fn check(&self, class: Class, key: Bucket) -> Decision {
        let index = class as usize;
        if class != Class::Read
            && let Some(shared) = &self.shared
            && let Some(decision) = shared.check(class.name(), key, self.rates[index]).await
        {
            return decision;
        }
        self.local.check(index, key)
    }

    /// Takes one request from `class`'s bucket for `key` if that bucket is
    /// in process; `None` if it is shared (ask [`Self::check`]).
    pub fn check_now(&self, class: Class, key: Bucket) -> Option<Decision> {
        if class != Class::Read && self.shared.is_some() {
            return None;
        }
        Some(self.local.check(class as usize, key))
    }

    /// Forgets in-process buckets that are full again, bounding memory.
    pub fn forget_idle(&self) {
        self.local.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_spread_evenly_over_the_limit() {
        let rate = Rate::new(LimitSettings {
            limit: 20,
            window_secs: 60,
        });
        assert_eq!(rate.interval, Duration::from_secs(3));
    }
}
