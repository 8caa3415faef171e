//! The response cache seen through the API: single flight, hits, negative
//! caching, invalidation on writes (on one instance and across instances),
//! the race between a slow reader and a writer, Redis and database outages,
//! HTTP caching headers, CDN purges and metrics.
//!
//! One module an area; this one holds what they share. Scenario functions
//! taking `&TestApp` run on SQLite and MariaDB with the local tier only
//! (`cache::<area>::sqlite::*`, `cache::<area>::mysql::*`) and on MariaDB with
//! a shared Redis tier (`cache::<area>::with_redis::*`).

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use feedgate::cache::Key;
use feedgate::cache::hooks::FillHook;
use feedgate::config::Secret;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::{Backend, SharedRedis, TestApp, TestResponse, TestUser};

const ARTICLES: &str = "/api/v1/articles";

/// Runs scenario functions on MariaDB with L1 and a shared Redis L2.
macro_rules! with_redis {
    ($($name:ident),* $(,)?) => {
        mod with_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let redis = $crate::support::SharedRedis::new();
                    let app = $crate::cache::redis_app(&redis).await;
                    super::$name(&app).await;
                }
            )*
        }
    };
}

mod authorization;
mod coherence;
mod headers;
mod hits;
mod invalidation;
mod live_editing;
mod outages;
mod production_redis;
mod purges;
mod redis_outage;
mod single_flight;
mod ttl;
mod variants;

// ---------------------------------------------------------------------------
// Helpers

fn article_uri(id: i64) -> String {
    format!("{ARTICLES}/{id}")
}

async fn publish(app: &TestApp, author: &TestUser, title: &str, tags: &[&str]) -> i64 {
    let created = app
        .article(
            author,
            json!({"title": title, "body": format!("The body of {title}."), "status": "published", "tags": tags}),
        )
        .await;
    created["id"].as_i64().expect("the article has an id")
}

/// PATCHes an article's title and checks the write was acknowledged.
async fn retitle(app: &TestApp, author: &TestUser, id: i64, title: &str) {
    let patched = app
        .patch(
            &article_uri(id),
            json!({"title": title}),
            Some(&author.token),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
}

fn title(response: &TestResponse) -> String {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()["title"]
        .as_str()
        .unwrap_or_else(|| panic!("no title in {}", response.text()))
        .to_owned()
}

fn titles(response: &TestResponse) -> Vec<String> {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", response.text()))
        .iter()
        .map(|item| item["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn tag_counts(response: &TestResponse) -> Value {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()["items"].clone()
}

fn get_request(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).expect("a valid request")
}

async fn get_with(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> TestResponse {
    app.send(get_request(uri, headers)).await
}

/// Checks `check` every few milliseconds until it holds, for at most
/// `limit`; how long it took, or `None` if it never held.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) async fn subscribed(app: &TestApp) {
    let waited = eventually(Duration::from_secs(10), async || {
        app.state.cache.is_subscribed()
    })
    .await;
    assert!(
        waited.is_some(),
        "the instance never subscribed to invalidations"
    );
}

/// An instance on a fresh MariaDB database with `redis` as its L2, once its
/// invalidation channel is up.
async fn redis_app(redis: &SharedRedis) -> TestApp {
    let app = TestApp::with_settings(Backend::MySql, |s| redis.configure(s)).await;
    subscribed(&app).await;
    app
}

/// A second instance on `app`'s database sharing `redis`, once subscribed.
async fn redis_sibling(app: &TestApp, redis: &SharedRedis) -> TestApp {
    let sibling = app.sibling(|s| redis.configure(s)).await;
    subscribed(&sibling).await;
    sibling
}

/// Holds the first load matching `pause_on` between its database read and
/// its cache fill: `reached` fires once it is held, `release` lets it go.
struct Pause {
    reached: Arc<Notify>,
    release: Arc<Notify>,
}

fn pause_first_fill(
    app: &TestApp,
    pause_on: impl Fn(&Key) -> bool + Send + Sync + 'static,
) -> Pause {
    let reached = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let armed = Arc::new(AtomicBool::new(true));
    let hook: FillHook = {
        let (reached, release) = (reached.clone(), release.clone());
        Arc::new(move |key: &Key| {
            let hold = pause_on(key) && armed.swap(false, Ordering::SeqCst);
            let (reached, release) = (reached.clone(), release.clone());
            Box::pin(async move {
                if hold {
                    reached.notify_one();
                    release.notified().await;
                }
            })
        })
    };
    app.state.cache.hooks.set_fill(Some(hook));
    Pause { reached, release }
}

/// The sum of a Prometheus series' samples whose labels include `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = series.split_once('{').unwrap_or((series, ""));
            let matches = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

async fn metrics_text(app: &TestApp) -> String {
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.text()
}

async fn readiness(app: &TestApp) -> Value {
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

async fn app_behind_proxy(
    proxy: &crate::support::TcpProxy,
    adjust: impl FnOnce(&mut feedgate::config::Settings),
) -> TestApp {
    TestApp::with_settings(Backend::MySql, |s| {
        s.database.url = Secret::new(proxy.rewrite(s.database.url.expose()));
        s.database.acquire_timeout_ms = 500;
        adjust(s);
    })
    .await
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &bytes[..], &mut out).expect("valid brotli");
    out
}

async fn long_article(app: &TestApp, author: &TestUser) -> i64 {
    let body = "Caches make reads cheap and writes interesting. ".repeat(110);
    let created = app
        .article(
            author,
            json!({"title": "Long", "body": body, "status": "published", "tags": ["rust"]}),
        )
        .await;
    created["id"].as_i64().expect("an id")
}
