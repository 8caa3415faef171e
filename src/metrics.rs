//! Prometheus metrics, rendered at `/metrics`. Every metric is declared
//! here, its doc line is its help text. Handles are resolved once (per
//! route and status for requests), so recording one costs an atomic add.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::Method;
use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::labels::{ReadTarget, RouteFamily, Tier};

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
        "feedgate_cache_variants_made_total",
        "Compressed variants made, by coding: each entry compresses a coding once, when first asked."
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
        "feedgate_cache_l1_entries",
        "Responses held in the in-process cache."
    );
    describe_gauge!(
        "feedgate_cache_l1_bytes",
        "What the in-process cache holds, as weighed against cache.l1_max_bytes."
    );
    describe_counter!(
        "feedgate_db_reads_total",
        "Reads that a replica may serve, by where they ran: replica, primary (no replicas), \
         or primary_fallback (no replica in rotation had applied what the read must see in \
         time, or the replica failed)."
    );
    describe_counter!(
        "feedgate_db_replica_waits_total",
        "Reads that waited for a replica to apply a commit position, by result \
         (reached, timed_out, failed)."
    );
    describe_gauge!(
        "feedgate_db_replica_lag_seconds",
        "Each replica's Seconds_Behind_Master at its last check (absent while unknown)."
    );
    describe_gauge!(
        "feedgate_db_replica_in_rotation",
        "1 while a replica takes reads, 0 while it is out (down, stopped, or too far behind)."
    );
    describe_gauge!(
        "feedgate_redis_up",
        "1 while Redis answers and the invalidation channel is subscribed, else 0 \
         (absent without Redis)."
    );
    describe_counter!(
        "feedgate_log_lines_dropped_total",
        "Request log lines dropped because the log's writer fell behind (its queue was full)."
    );
}

/// Cache counters, resolved once: a hit only increments an atomic.
struct CacheCounters {
    /// By tier, route family and whether it hit.
    lookups: [[[Counter; 2]; RouteFamily::ALL.len()]; Tier::ALL.len()],
    fills: [Counter; RouteFamily::ALL.len()],
    single_flight_waits: [Counter; RouteFamily::ALL.len()],
}

fn cache_counters() -> &'static CacheCounters {
    static COUNTERS: OnceLock<CacheCounters> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        handle();
        let by_route = |name: &'static str| {
            RouteFamily::ALL.map(|route| counter!(name, "route" => route.as_str()))
        };
        CacheCounters {
            lookups: Tier::ALL.map(|tier| {
                RouteFamily::ALL.map(|route| {
                    ["miss", "hit"].map(|result| {
                        counter!(
                            "feedgate_cache_lookups_total",
                            "tier" => tier.as_str(),
                            "route" => route.as_str(),
                            "result" => result
                        )
                    })
                })
            }),
            fills: by_route("feedgate_cache_fills_total"),
            single_flight_waits: by_route("feedgate_cache_single_flight_waits_total"),
        }
    })
}

pub fn cache_lookup(tier: Tier, route: RouteFamily, hit: bool) {
    cache_counters().lookups[tier as usize][route as usize][usize::from(hit)].increment(1);
}

pub fn cache_fill(route: RouteFamily) {
    cache_counters().fills[route as usize].increment(1);
}

pub fn single_flight_wait(route: RouteFamily) {
    cache_counters().single_flight_waits[route as usize].increment(1);
}

pub fn variant_made(coding: &'static str) {
    counter!("feedgate_cache_variants_made_total", "coding" => coding).increment(1);
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

pub fn db_read(target: ReadTarget) {
    static COUNTERS: OnceLock<[Counter; 3]> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        handle();
        ReadTarget::ALL.map(|t| counter!("feedgate_db_reads_total", "target" => t.as_str()))
    })[target as usize]
        .increment(1);
}

pub fn replica_wait(result: &'static str) {
    counter!("feedgate_db_replica_waits_total", "result" => result).increment(1);
}

/// A replica's lag at its last check; `None` (unknown) removes the gauge's value.
pub fn replica_lag(replica: &str, lag: Option<Duration>) {
    let gauge = gauge!("feedgate_db_replica_lag_seconds", "replica" => replica.to_owned());
    gauge.set(lag.map_or(f64::NAN, |lag| lag.as_secs_f64()));
}

pub fn replica_in_rotation(replica: &str, in_rotation: bool) {
    gauge!("feedgate_db_replica_in_rotation", "replica" => replica.to_owned())
        .set(u8::from(in_rotation));
}

pub fn purge_failed() {
    counter!("feedgate_cdn_purge_failures_total").increment(1);
}

/// The counter of request log lines dropped at a full queue, resolved once
/// by the request log: a drop then costs an atomic add.
pub fn log_lines_dropped() -> Counter {
    handle();
    counter!("feedgate_log_lines_dropped_total")
}

/// Sets the in-process cache's gauges; called at scrape time.
pub fn l1(entries: u64, bytes: u64) {
    gauge!("feedgate_cache_l1_entries").set(entries as f64);
    gauge!("feedgate_cache_l1_bytes").set(bytes as f64);
}

/// Sets the database pool's gauges (open connections, of which idle, and
/// the most allowed) and Redis's (`None` without Redis); called at scrape time.
pub fn pools(size: u32, idle: u32, max: u32, redis: Option<bool>) {
    gauge!("feedgate_db_pool_connections", "state" => "idle").set(idle);
    gauge!("feedgate_db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle));
    gauge!("feedgate_db_pool_size").set(size);
    gauge!("feedgate_db_pool_max_connections").set(max);
    if let Some(up) = redis {
        gauge!("feedgate_redis_up").set(u8::from(up));
    }
}

/// The request counter and latency histogram of one route template, method
/// and status, resolved once and then only updated.
pub struct RequestMetrics {
    requests: Counter,
    duration: Histogram,
}

impl RequestMetrics {
    /// `route` is the matched template (`/api/v1/articles/{id}`) or
    /// `unmatched`, never the raw path, and `method` a [`method_label`]:
    /// every label takes its values from a finite
    /// set, whatever clients send.
    pub fn new(method: &'static str, route: &str, status: u16) -> Self {
        handle();
        let route = route.to_owned();
        Self {
            requests: counter!(
                "feedgate_http_requests_total",
                "method" => method,
                "route" => route.clone(),
                "status" => status.to_string()
            ),
            duration: histogram!(
                "feedgate_http_request_duration_seconds",
                "method" => method,
                "route" => route
            ),
        }
    }

    pub fn record(&self, elapsed: Duration) {
        self.requests.increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// The standard methods by name; extension methods fold into `other`.
pub fn method_label(method: &Method) -> &'static str {
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
