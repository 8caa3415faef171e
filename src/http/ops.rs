//! Operational endpoints outside the API: liveness, readiness and metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::cache::RedisHealth;

/// A dependency that does not answer within this is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// `/metrics`, apart so that it can move to the ops address.
pub fn metrics_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready`, `degraded` (Redis down) or `unavailable`.
    pub status: &'static str,
    /// Each dependency: `ok` or `down`; Redis also `full` (it refuses
    /// writes, so shared entries are not refreshed; invalidations still hold);
    /// a replica also `unknown` (not checked yet), `stopped` (not
    /// replicating) or `lagging` (too far behind): only `ok` takes reads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `database`, `redis`, or `replica` (one per read replica).
    pub name: &'static str,
    /// A replica's `host:port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(
    get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process is up: `{\"status\": \"ok\"}`", body = Health)),
)]
pub async fn healthz() -> impl IntoResponse {
    // Written out once: probes call this often, and it never changes.
    const OK: &str = r#"{"status":"ok"}"#;
    ([(header::CONTENT_TYPE, "application/json")], OK)
}

/// Readiness: 503 while the database does not answer. A Redis outage is
/// reported (`redis: down`, status `degraded`) but does not fail readiness:
/// the instance still serves, from its local cache and the database. Each
/// read replica is reported as its last check found it; a replica out of
/// rotation changes nothing else (its reads go to the primary).
#[utoipa::path(
    get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready (`ready`), or serving without Redis (`degraded`)", body = Health),
        (status = 503, description = "The database does not answer (`unavailable`)", body = Health),
    ),
)]
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    let (database, redis) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, app.store.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, app.cache.redis_health()),
    );
    let database_up = matches!(database, Ok(Ok(())));
    let mut checks = vec![Check {
        name: "database",
        server: None,
        status: if database_up { "ok" } else { "down" },
    }];
    let redis = match redis {
        Ok(health) => health,
        Err(_) => Some(RedisHealth::Down),
    };
    let redis_up = match redis {
        None => true,
        Some(health) => {
            checks.push(Check {
                name: "redis",
                server: None,
                status: match health {
                    RedisHealth::Ok => "ok",
                    RedisHealth::Down => "down",
                    RedisHealth::Full => "full",
                },
            });
            health == RedisHealth::Ok
        }
    };
    checks.extend(
        app.store
            .replica_statuses()
            .into_iter()
            .map(|replica| Check {
                name: "replica",
                server: Some(replica.name),
                status: replica.health.as_str(),
            }),
    );
    let (status, word) = match (database_up, redis_up) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, false) => (StatusCode::OK, "degraded"),
        (true, true) => (StatusCode::OK, "ready"),
    };
    (
        status,
        Json(Health {
            status: word,
            checks,
        }),
    )
}

/// Prometheus metrics in the text exposition format. Pool gauges are read
/// at scrape time.
#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
)]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let redis = tokio::time::timeout(CHECK_TIMEOUT, app.cache.redis_health())
        .await
        .unwrap_or(Some(RedisHealth::Down))
        .map(|health| health != RedisHealth::Down);
    let db = app.store.pool_stats();
    crate::metrics::pools(db.size, db.idle, db.max, redis);
    let l1 = app.cache.l1_usage();
    crate::metrics::l1(l1.entries, l1.bytes);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}
