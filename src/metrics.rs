//! Prometheus metrics, rendered at `/metrics` by the router (no second HTTP
//! listener). Every metric is declared here, its doc line is its help text.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::PoolStats;

/// Latency buckets, in seconds: cache hits sit in the first few.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("feedgate_http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        "feedgate_http_requests_total",
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        "feedgate_http_request_duration_seconds",
        "HTTP request latency by method and route template."
    );
    describe_counter!(
        "feedgate_cache_lookups_total",
        "Cache lookups by tier, route family and result (hit or miss)."
    );
    describe_counter!(
        "feedgate_cache_fills_total",
        "Loads that reached the database, by route family."
    );
    describe_counter!(
        "feedgate_cache_single_flight_waits_total",
        "Requests that waited for another request's load of the same key."
    );
    describe_counter!(
        "feedgate_cache_stale_served_total",
        "Stale entries served because the database was unavailable."
    );
    describe_counter!(
        "feedgate_cache_invalidations_sent_total",
        "Families invalidated by writes on this instance."
    );
    describe_counter!(
        "feedgate_cache_invalidations_received_total",
        "Families invalidated by messages from the invalidation channel."
    );
    describe_counter!(
        "feedgate_redis_errors_total",
        "Redis calls that failed or timed out, by operation."
    );
    describe_counter!(
        "feedgate_db_write_retries_total",
        "Write transactions run again after the database broke a deadlock or lock wait."
    );
    describe_counter!(
        "feedgate_cdn_purge_failures_total",
        "CDN purge requests that failed after every retry."
    );
    describe_gauge!(
        "feedgate_db_pool_connections",
        "Open database connections by state (idle or in_use)."
    );
    describe_gauge!(
        "feedgate_db_pool_size",
        "Open database connections, idle or in use."
    );
    describe_gauge!(
        "feedgate_db_pool_max_connections",
        "The database pool's limit (database.max_connections)."
    );
    describe_gauge!(
        "feedgate_redis_up",
        "1 while Redis answers and the invalidation channel is subscribed, else 0 \
         (absent without Redis)."
    );
}

pub fn cache_lookup(tier: &'static str, route: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    counter!("feedgate_cache_lookups_total", "tier" => tier, "route" => route, "result" => result)
        .increment(1);
}

pub fn cache_fill(route: &'static str) {
    counter!("feedgate_cache_fills_total", "route" => route).increment(1);
}

pub fn single_flight_wait(route: &'static str) {
    counter!("feedgate_cache_single_flight_waits_total", "route" => route).increment(1);
}

pub fn stale_served() {
    counter!("feedgate_cache_stale_served_total").increment(1);
}

pub fn invalidations_sent(families: usize) {
    counter!("feedgate_cache_invalidations_sent_total").increment(families as u64);
}

pub fn invalidations_received(families: usize) {
    counter!("feedgate_cache_invalidations_received_total").increment(families as u64);
}

pub fn redis_error(op: &'static str) {
    counter!("feedgate_redis_errors_total", "op" => op).increment(1);
}

pub fn write_retried() {
    counter!("feedgate_db_write_retries_total").increment(1);
}

pub fn purge_failed() {
    counter!("feedgate_cdn_purge_failures_total").increment(1);
}

/// Sets the pool gauges; called at scrape time. `redis` is `None` without Redis.
pub fn pools(db: PoolStats, redis: Option<bool>) {
    gauge!("feedgate_db_pool_connections", "state" => "idle").set(db.idle);
    gauge!("feedgate_db_pool_connections", "state" => "in_use").set(db.in_use());
    gauge!("feedgate_db_pool_size").set(db.size);
    gauge!("feedgate_db_pool_max_connections").set(db.max);
    if let Some(up) = redis {
        gauge!("feedgate_redis_up").set(u8::from(up));
    }
}

/// Middleware: counts and times every request, labelled by the route
/// template (`/api/v1/articles/{id}`, or `unmatched`), never the raw path,
/// and by a known method (anything else is `other`): every label takes its
/// values from a finite set, whatever clients send.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    counter!("feedgate_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!("feedgate_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The standard methods by name; extension methods fold into `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}
