//! Single flight: a hundred concurrent cold reads of one key reach the
//! store once, and every reader gets the same answer.

use std::time::Duration;

use axum::http::StatusCode;
use feedgate::domain::Role;

use super::{
    ARTICLES, article_uri, eventually, get_request, metric, metrics_text, pause_first_fill,
    publish, redis_app, title, titles,
};
use crate::support::{Backend, SharedRedis, TestApp, TestResponse};

/// Sends 100 concurrent reads of `uri` while the first load is held, so the
/// others pile up behind it; returns the responses and the loads they caused.
async fn hundred_cold_reads(app: &TestApp, uri: &str) -> (Vec<TestResponse>, u64) {
    let pause = pause_first_fill(app, |_| true);
    let before = app.state.cache.loads();
    let misses_before = l1_misses(app).await;
    let readers: Vec<_> = (0..100).map(|_| app.spawn(get_request(uri, &[]))).collect();
    pause.reached.notified().await;
    // Let the load go once every reader has missed the local tier: from that
    // miss each goes straight on to wait for the held load.
    let all_missed = eventually(Duration::from_secs(10), async || {
        l1_misses(app).await >= misses_before + 100.0
    })
    .await;
    assert!(
        all_missed.is_some(),
        "the readers never all reached the cache"
    );
    pause.release.notify_one();
    let mut responses = Vec::new();
    for reader in readers {
        responses.push(reader.await.expect("the reader finishes"));
    }
    app.state.cache.hooks.set_fill(None);
    (responses, app.state.cache.loads() - before)
}

/// Lookups that missed the local tier, on every route.
async fn l1_misses(app: &TestApp) -> f64 {
    metric(
        &metrics_text(app).await,
        "feedgate_cache_lookups_total",
        &[("tier", "l1"), ("result", "miss")],
    )
}

fn assert_all_identical_200s(responses: &[TestResponse]) {
    let first = &responses[0];
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    for response in responses {
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.body, first.body);
        assert_eq!(response.header("etag"), first.header("etag"));
    }
}

async fn single_flight_waits(app: &TestApp, route: &str) -> f64 {
    metric(
        &metrics_text(app).await,
        "feedgate_cache_single_flight_waits_total",
        &[("route", route)],
    )
}

async fn hundred_concurrent_cold_reads_of_an_article_load_it_once(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = publish(app, &ada, "Popular", &["rust"]).await;
    let waits_before = single_flight_waits(app, "article").await;

    let (responses, loads) = hundred_cold_reads(app, &article_uri(id)).await;

    assert_all_identical_200s(&responses);
    assert_eq!(title(&responses[0]), "Popular");
    assert_eq!(
        loads, 1,
        "100 concurrent cold reads reached the store {loads} times"
    );
    let waits = single_flight_waits(app, "article").await - waits_before;
    assert!(waits >= 1.0, "no reader waited for the first one's load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_cold_reads_of_an_article_load_it_once_on_mysql() {
    let app = TestApp::new(Backend::MySql).await;
    hundred_concurrent_cold_reads_of_an_article_load_it_once(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_cold_reads_of_an_article_load_it_once_on_sqlite() {
    let app = TestApp::new(Backend::Sqlite).await;
    hundred_concurrent_cold_reads_of_an_article_load_it_once(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_cold_reads_of_an_article_load_it_once_with_redis() {
    let redis = SharedRedis::new();
    let app = redis_app(&redis).await;
    hundred_concurrent_cold_reads_of_an_article_load_it_once(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_cold_reads_of_a_list_page_load_it_once() {
    let app = TestApp::new(Backend::MySql).await;
    let ada = app.user("ada", Role::Author).await;
    publish(&app, &ada, "One", &["rust"]).await;
    publish(&app, &ada, "Two", &[]).await;
    let waits_before = single_flight_waits(&app, "articles").await;

    let (responses, loads) = hundred_cold_reads(&app, &format!("{ARTICLES}?tag=rust")).await;

    assert_all_identical_200s(&responses);
    assert_eq!(titles(&responses[0]), ["One"]);
    assert_eq!(
        loads, 1,
        "100 concurrent cold reads reached the store {loads} times"
    );
    let waits = single_flight_waits(&app, "articles").await - waits_before;
    assert!(waits >= 1.0, "no reader waited for the first one's load");
}
