//! The middleware stack, outermost first, and the guard that turns any bare
//! error response (wrong method, timeout, panic) into problem JSON.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any as AnyOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use super::guard;
use super::request_log::RequestLogLayer;
use crate::config::ServerSettings;
use crate::error::{ApiError, PROBLEM_JSON, problem_for_status};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn stack(router: Router, settings: &ServerSettings) -> Router {
    let layers = ServiceBuilder::new()
        // Every request gets an id, echoed in the response and in its logs;
        // a client's own only if it is safe to log.
        .map_request(|request| guard::drop_unsafe_request_id(request, &REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(RequestLogLayer)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(cors(settings))
        // Below here every error response is problem JSON.
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(middleware::from_fn(guard::limit_sizes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(settings.request_timeout_secs),
        ))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes));
    router.layer(layers)
}

fn cors(settings: &ServerSettings) -> CorsLayer {
    let origins = &settings.cors_origins;
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(AnyOrigin)
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::LAST_MODIFIED,
            REQUEST_ID,
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(3600))
}

/// Rewrites error responses that are not already JSON (axum's 405, the
/// timeout's 503, a body limit's 413) into problem JSON, keeping headers
/// such as `Allow`. JSON error bodies stay: problems, and the readiness
/// report's per-dependency checks.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            value.starts_with(PROBLEM_JSON.as_bytes()) || value.starts_with(b"application/json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut problem = problem_for_status(status);
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal("a handler panicked").into_response()
}
