//! Operational endpoints outside the API: liveness and readiness.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

/// A dependency that does not answer within this is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    pub status: &'static str,
    /// Each dependency: `ok` or `down`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    pub name: &'static str,
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        checks: vec![],
    })
}

/// Readiness: the database answers. 503 while it does not.
#[utoipa::path(
    get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = Health)),
)]
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    let database_up = matches!(
        tokio::time::timeout(CHECK_TIMEOUT, app.store.ping()).await,
        Ok(Ok(()))
    );
    let checks = vec![Check {
        name: "database",
        status: if database_up { "ok" } else { "down" },
    }];
    let (status, word) = if database_up {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(Health {
            status: word,
            checks,
        }),
    )
}
