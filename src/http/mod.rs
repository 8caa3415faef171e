//! The HTTP layer: routes, extractors, conditional responses and middleware.
//! Handlers take typed input, make one call, and return a view or an entry.

mod articles;
mod comments;
mod conditional;
mod cors;
mod edge;
mod extract;
mod guard;
mod middleware;
mod ops;
mod problems;
mod request_id;
mod request_log;
mod rules;
mod serde_errors;
mod tags;
mod throttle;
mod tokens;
mod users;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use extract::AuthUser;
pub use request_log::RequestLogLayer;

use crate::app::AppState;
use crate::error::ApiError;
use crate::openapi::ApiDoc;

/// The whole service: API, operational endpoints, docs, and middleware.
/// With `server.ops_listen` set, `/metrics` is left to [`ops_router`].
pub fn router(state: AppState) -> Router {
    let routes = if state.settings.server.ops_listen.is_some() {
        public_routes()
    } else {
        api_router()
    };
    let (routes, _) = routes.split_for_parts();
    let mut api = api_router().into_openapi();
    crate::openapi::complete(&mut api);
    finish(
        routes.merge(SwaggerUi::new("/docs").url("/openapi.json", api)),
        state,
    )
}

/// What the ops address serves: `/metrics`, `/healthz` and `/readyz`.
pub fn ops_router(state: AppState) -> Router {
    let (routes, _) = ops::router().merge(ops::metrics_router()).split_for_parts();
    finish(routes, state)
}

/// Serves `router` on the ops listener until `shutdown` resolves; apart from
/// the public server so that each can change on its own.
pub async fn serve_ops(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The 404 fallback, the state and the middleware stack (applied after the
/// fallback, so unmatched requests are limited and counted too).
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    let router = routes
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .with_state(state.clone());
    middleware::stack(router, &state)
}

/// Every documented route; the OpenAPI document is built from the same table.
pub fn api_router() -> OpenApiRouter<AppState> {
    public_routes().merge(ops::metrics_router())
}

/// Every route but `/metrics`.
fn public_routes() -> OpenApiRouter<AppState> {
    // Full paths rather than `nest`, which would rewrite each request's URI.
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(articles::router())
        .merge(comments::router())
        .merge(tags::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(ops::router())
}
