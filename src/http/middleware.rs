//! The middleware stack, outermost first. Axum applies it to each route
//! after routing, so every layer knows the matched route template.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::ServiceBuilder;

use super::cors::CorsShortcutLayer;
use super::edge::EdgeLayer;
use super::request_id::{REQUEST_ID, RequestIdLayer};
use super::request_log::RequestLogLayer;
use crate::app::AppState;

pub fn stack(router: Router, state: &AppState) -> Router {
    let settings = &state.settings.server;
    let layers = ServiceBuilder::new()
        .layer(RequestIdLayer)
        .layer(RequestLogLayer::new(state.request_log.clone()))
        .layer(CorsShortcutLayer::new(settings, REQUEST_ID))
        // Below here every error response is problem JSON.
        .layer(EdgeLayer::new(state.clone()))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes));
    router.layer(layers)
}
