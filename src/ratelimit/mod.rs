//! Request rate limits: GCRA buckets per client or user, in process
//! (governor) and, for writes and sign-ins, shared by every instance through
//! Redis. Reads never wait on Redis; a Redis that fails hands its work to
//! the in-process buckets, which have counted along with Redis all the
//! while, so they go on from this instance's own count instead of from
//! full.
//!
//! Password sign-ins have two budgets per username (see [`SignInBudget`]):
//! one per client, and a shared one that, once spent, only clients the
//! user signed in from before get past.
//!
//! governor is used directly rather than through tower_governor's layer:
//! that layer keys only on request parts (not the username in a sign-in
//! body), answers with its own body and `x-ratelimit-*` headers, cannot
//! defer to a shared store, and its forwarding-aware key extractor believes
//! `X-Forwarded-For` from any client.

mod client;
mod local;
mod shared;

pub use client::client_key;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::config::{LimitSettings, RateLimitSettings};
use crate::domain::canonical_username;
use crate::redis_link::RedisLink;
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
    /// `POST /tokens` per username, from every client together.
    TokenUsername,
    /// `POST /users` per client.
    Signup,
    /// `POST /tokens` per username and client.
    TokenUsernameClient,
}

impl Class {
    const ALL: [Class; 6] = [
        Class::Read,
        Class::Write,
        Class::TokenClient,
        Class::TokenUsername,
        Class::Signup,
        Class::TokenUsernameClient,
    ];

    fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::TokenClient => "token_client",
            Class::TokenUsername => "token_username",
            Class::Signup => "signup",
            Class::TokenUsernameClient => "token_username_client",
        }
    }

    fn settings(self, settings: &RateLimitSettings) -> LimitSettings {
        match self {
            Class::Read => settings.read,
            Class::Write => settings.write,
            Class::TokenClient => settings.token_client,
            Class::TokenUsername => settings.token_username,
            Class::Signup => settings.signup,
            Class::TokenUsernameClient => settings.token_username_client,
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
    /// A username, by a hash of its canonical form
    /// ([`canonical_username`]): every spelling that could reach an
    /// account is counted as that account, and any string may be sent.
    Username(u64),
    /// A username (as above) tried by one client.
    UsernameClient(u64),
}

impl Bucket {
    pub fn username(username: &str) -> Self {
        Bucket::Username(hash64(&[canonical_username(username).as_bytes()]))
    }

    /// `client` is `None` for requests with no address (in process).
    pub fn username_client(username: &str, client: Option<IpAddr>) -> Self {
        let client = client.map(|ip| ip.to_string()).unwrap_or_default();
        let key = canonical_username(username);
        Bucket::UsernameClient(hash64(&[key.as_bytes(), b"\0", client.as_bytes()]))
    }
}

/// The first 64 bits of the SHA-256 of `parts`, concatenated.
fn hash64(parts: &[&[u8]]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bucket::User(id) => write!(f, "u:{id}"),
            Bucket::Client(ip) => write!(f, "ip:{ip}"),
            Bucket::Username(hash) | Bucket::UsernameClient(hash) => write!(f, "{hash:016x}"),
        }
    }
}

/// Where a password sign-in stands with its username's two budgets,
/// taken in this order so that a refusal by one spends nothing of the
/// other.
///
/// A budget per username and client stops one client guessing, and cannot
/// be spent by anyone else. A budget per username, shared by every client,
/// stops guessing spread over many addresses; once it is spent, only a
/// client the user signed in from before (a known client) may have the
/// password checked. So guessing stops, while an attacker who spends a
/// username's budget locks out only the user's new clients, never the
/// ones they already use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInBudget {
    /// Both budgets had room: check the password.
    Open,
    /// This client spent its own budget for the username: refused.
    ClientSpent(Decision),
    /// Every client together spent the username's budget: refused unless
    /// the client is a known one.
    UsernameSpent(Decision),
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
    rates: [Rate; 6],
    local: LocalBuckets,
    shared: Option<SharedBuckets>,
}

impl RateLimiter {
    /// With Redis (in whichever mode), all but read limits are shared
    /// through it under `{prefix}:rl:`; every Redis call gives up after
    /// `timeout`.
    pub fn new(
        settings: &RateLimitSettings,
        trusted_proxies: Vec<IpNet>,
        link: Option<Arc<RedisLink>>,
        prefix: &str,
        timeout: Duration,
    ) -> Self {
        let rates = Class::ALL.map(|class| Rate::new(class.settings(settings)));
        let shared = link.map(|link| SharedBuckets::new(link, prefix, timeout));
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

    /// Takes one request from `class`'s bucket for `key`. A request the
    /// shared bucket lets through is counted in the in-process one too, so
    /// that if Redis fails this instance goes on from what it counted.
    pub async fn check(&self, class: Class, key: Bucket) -> Decision {
        let index = class as usize;
        if class != Class::Read
            && let Some(shared) = &self.shared
            && let Some(decision) = shared.check(class.name(), key, self.rates[index]).await
        {
            if decision.allowed {
                self.local.check(index, key);
            }
            return decision;
        }
        self.local.check(index, key)
    }

    /// Takes a password sign-in for `username` from `client` from its
    /// budgets: see [`SignInBudget`].
    pub async fn sign_in(&self, username: &str, client: Option<IpAddr>) -> SignInBudget {
        let own = Bucket::username_client(username, client);
        let decision = self.check(Class::TokenUsernameClient, own).await;
        if !decision.allowed {
            return SignInBudget::ClientSpent(decision);
        }
        let shared = self
            .check(Class::TokenUsername, Bucket::username(username))
            .await;
        if !shared.allowed {
            return SignInBudget::UsernameSpent(shared);
        }
        SignInBudget::Open
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
    fn a_usernames_buckets_are_those_of_its_canonical_form() {
        let ip = "192.0.2.1".parse().ok();
        for spelling in ["bf3 ", "BF3", "\u{FF42}\u{FF46}\u{FF13}", "bf3\u{0}"] {
            assert_eq!(Bucket::username(spelling), Bucket::username("bf3"));
            assert_eq!(
                Bucket::username_client(spelling, ip),
                Bucket::username_client("bf3", ip)
            );
        }
        assert_ne!(
            Bucket::username_client("bf3", ip),
            Bucket::username_client("bf3", "192.0.2.2".parse().ok())
        );
    }

    #[test]
    fn a_window_is_spread_evenly_over_the_limit() {
        let rate = Rate::new(LimitSettings {
            limit: 20,
            window_secs: 60,
        });
        assert_eq!(rate.interval, Duration::from_secs(3));
    }
}
