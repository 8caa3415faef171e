//! The rate-limit middleware: which bucket a request is counted in, and the
//! 429 (or the `RateLimit-*` headers of a write) that follows.
//!
//! Reads are keyed by the client's address (by the user when a valid token
//! is sent) and counted in process. Writes are keyed by the user (by the
//! address without a token); `POST /tokens` and `POST /users` by address,
//! with their own, much tighter limits; the token endpoint also limits each
//! username (in its handler, which has read the body). Operational
//! endpoints are never limited. A request with neither a user nor an
//! address (in-process calls, which have no socket) is not limited.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::{App, AppState};
use crate::error::ApiError;
use crate::ratelimit::{Class, RateLimiter, username_key};

const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

pub async fn limit_rate(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(limiter) = app.limiter.as_ref() else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let Some(class) = classify(request.method(), route) else {
        return next.run(request).await;
    };
    let Some(key) = bucket_key(&app, limiter, class, &request) else {
        return next.run(request).await;
    };
    let decision = limiter.check(class, key).await;
    if !decision.allowed {
        return ApiError::TooManyRequests(decision).into_response();
    }
    let mut response = next.run(request).await;
    // A 429 from the handler (the username limit) reports its own bucket.
    if class != Class::Read && response.status() != StatusCode::TOO_MANY_REQUESTS {
        decision.write_headers(response.headers_mut());
    }
    response
}

/// The per-username limit of sign-ins, which only a handler that has read
/// the body can apply.
pub async fn limit_username(app: &App, username: &str) -> Result<(), ApiError> {
    let Some(limiter) = app.limiter.as_ref() else {
        return Ok(());
    };
    let decision = limiter
        .check(Class::TokenUsername, username_key(username))
        .await;
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::TooManyRequests(decision))
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
fn bucket_key(
    app: &AppState,
    limiter: &RateLimiter,
    class: Class,
    request: &Request,
) -> Option<String> {
    if matches!(class, Class::Read | Class::Write)
        && let Some(id) = token_user(app, request)
    {
        return Some(format!("u:{id}"));
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    limiter
        .client_ip(peer, request.headers())
        .map(|ip| format!("ip:{ip}"))
}

/// The user id of a valid bearer token; an invalid one counts as none (the
/// handler will refuse it).
fn token_user(app: &AppState, request: &Request) -> Option<i64> {
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
