//! The middleware stack, outermost first. Axum applies it to each route
//! after routing, so every layer knows the matched route template.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{self, HeaderName, HeaderValue};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, Any as AnyOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use super::edge::EdgeLayer;
use super::guard;
use super::request_log::RequestLogLayer;
use crate::app::AppState;
use crate::config::ServerSettings;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn stack(router: Router, state: &AppState) -> Router {
    let settings = &state.settings.server;
    let layers = ServiceBuilder::new()
        // Every request gets an id, echoed in the response and in its logs;
        // a client's own only if it is safe to log. UUIDs come from a
        // thread-local generator (uuid's `fast-rng`), not a system call.
        .map_request(|request| guard::drop_unsafe_request_id(request, &REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(RequestLogLayer)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(cors(settings))
        // Below here every error response is problem JSON.
        .layer(EdgeLayer::new(state.clone()))
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
