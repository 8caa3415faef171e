//! The HTTP layer: routes, extractors, conditional responses and middleware.
//! Handlers take typed input, make one call, and return a view or an entry.

mod articles;
mod comments;
mod conditional;
mod extract;
mod guard;
mod middleware;
mod ops;
mod problems;
mod rules;
mod serde_errors;
mod tags;
mod throttle;
mod tokens;
mod users;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use conditional::CacheControl;
pub use extract::AuthUser;

use crate::app::AppState;
use crate::error::ApiError;
use crate::openapi::ApiDoc;

/// The whole service: API, operational endpoints, docs, and middleware.
pub fn router(state: AppState) -> Router {
    let (router, mut api) = api_router().split_for_parts();
    crate::openapi::complete(&mut api);
    let router = router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        // After the fallback, so unmatched requests are limited and counted too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            throttle::limit_rate,
        ))
        .layer(axum::middleware::from_fn(crate::metrics::track_requests))
        .with_state(state.clone());
    middleware::stack(router, &state.settings.server)
}

/// Every documented route; the OpenAPI document is built from the same table.
pub fn api_router() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(articles::router())
        .merge(comments::router())
        .merge(tags::router())
        .merge(users::router())
        .merge(tokens::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .merge(ops::router())
}
