//! Rate limits at the edge: which bucket a request is counted in (the edge
//! answers the 429, or writes the `RateLimit-*` headers of a write).
//!
//! Reads are keyed by the client's address (by the user when a valid token
//! is sent) and counted in process. Writes are keyed by the user (by the
//! address without a token); `POST /tokens` and `POST /users` by address,
//! with their own, much tighter limits; a password sign-in also takes from
//! its username's budgets (in the write it makes, once the body is read). Operational
//! endpoints are never limited. A request with neither a user nor an
//! address (in-process calls, which have no socket) is not limited.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method, header};

use crate::app::{App, AppState};
use crate::ratelimit::{Bucket, Class, Decision, RateLimiter};

const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// How the rate limits take a request.
pub enum Admission {
    /// Not limited: an operational route, limits off, or no key to count by.
    Free,
    /// Counted in an in-process bucket.
    Decided(Class, Decision),
    /// To be counted in a bucket shared through Redis.
    Ask(Class, Bucket),
}

/// Counts the request in its bucket, deciding at once where the bucket is in
/// process (reads always are).
pub fn admit(app: &App, request: &Request) -> Admission {
    let Some(limiter) = app.limiter.as_ref() else {
        return Admission::Free;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let Some(class) = classify(request.method(), route) else {
        return Admission::Free;
    };
    let Some(key) = bucket_key(app, limiter, class, request) else {
        return Admission::Free;
    };
    match limiter.check_now(class, key) {
        Some(decision) => Admission::Decided(class, decision),
        None => Admission::Ask(class, key),
    }
}

/// The client's address as the rate limits see it (what trusted proxies
/// forward, else the socket peer); `None` for in-process requests. The
/// per-username sign-in budgets, which only a handler that has read the
/// body can take, are kept per client by it.
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_ip(
            app.limiter.as_ref(),
            &parts.extensions,
            &parts.headers,
        )))
    }
}

/// What trusted proxies say the client is (with limits on), else the peer.
fn client_ip(
    limiter: Option<&RateLimiter>,
    extensions: &Extensions,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    match limiter {
        Some(limiter) => limiter.client_ip(peer, headers),
        None => peer,
    }
}

fn classify(method: &Method, route: Option<&str>) -> Option<Class> {
    match (method, route) {
        (_, Some(route)) if EXEMPT.contains(&route) => None,
        (&Method::POST, Some("/api/v1/tokens")) => Some(Class::TokenClient),
        (&Method::POST, Some("/api/v1/users")) => Some(Class::Signup),
        (method, _) if method.is_safe() => Some(Class::Read),
        _ => Some(Class::Write),
    }
}

/// `u:<id>` for a caller with a valid token (reads and writes), else
/// `ip:<address>`; `None` when neither is known.
fn bucket_key(app: &App, limiter: &RateLimiter, class: Class, request: &Request) -> Option<Bucket> {
    if matches!(class, Class::Read | Class::Write)
        && let Some(id) = token_user(app, request)
    {
        return Some(Bucket::User(id));
    }
    client_ip(Some(limiter), request.extensions(), request.headers()).map(Bucket::Client)
}

/// The user id of a valid bearer token; an invalid one counts as none (the
/// handler will refuse it).
fn token_user(app: &App, request: &Request) -> Option<i64> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    app.auth.verify_access_token(token.trim()).ok()?.user_id()
}
