//! Prometheus metrics, rendered at `/metrics` by the router (no second HTTP
//! listener). Every metric is declared here, its doc line is its help text.

use std::sync::OnceLock;

use metrics::{counter, describe_counter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

fn describe() {
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
        "feedgate_cdn_purge_failures_total",
        "CDN purge requests that failed after every retry."
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

pub fn purge_failed() {
    counter!("feedgate_cdn_purge_failures_total").increment(1);
}
