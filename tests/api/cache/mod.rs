//! The response cache seen through the API: single flight, hits, negative
//! caching, invalidation on writes (on one instance and across instances),
//! the race between a slow reader and a writer, Redis and database outages,
//! HTTP caching headers, CDN purges and metrics.
//!
//! Scenario functions taking `&TestApp` run on SQLite and MariaDB with the
//! local tier only (`cache::sqlite::*`, `cache::mysql::*`) and on MariaDB
//! with a shared Redis tier (`cache::with_redis::*`).

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::routing::post;
use feedgate::cache::Key;
use feedgate::cache::hooks::FillHook;
use feedgate::config::Secret;
use feedgate::domain::{ArticleContent, ArticleStatus, Role};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

mod authorization;
mod live_editing;
mod outages;
mod production_redis;
mod variants;

use crate::on_both_backends;
use crate::support::{
    Backend, RedisServer, Served, SharedRedis, TestApp, TestResponse, TestUser, mysql_proxy,
};

const ARTICLES: &str = "/api/v1/articles";

/// Runs scenario functions on MariaDB with L1 and a shared Redis L2.
macro_rules! with_redis {
    ($($name:ident),* $(,)?) => {
        mod with_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let redis = $crate::support::SharedRedis::new();
                    let app = super::redis_app(&redis).await;
                    super::$name(&app).await;
                }
            )*
        }
    };
}

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

// ---------------------------------------------------------------------------
// Single flight

/// Sends 100 concurrent reads of `uri` while the first load is held, so the
/// others pile up behind it; returns the responses and the loads they caused.
async fn hundred_cold_reads(app: &TestApp, uri: &str) -> (Vec<TestResponse>, u64) {
    let pause = pause_first_fill(app, |_| true);
    let before = app.state.cache.loads();
    let readers: Vec<_> = (0..100).map(|_| app.spawn(get_request(uri, &[]))).collect();
    pause.reached.notified().await;
    // Give the other readers time to reach the cache; any that arrive after
    // the fill are hits, which the assertions accept too.
    tokio::time::sleep(Duration::from_millis(50)).await;
    pause.release.notify_one();
    let mut responses = Vec::new();
    for reader in readers {
        responses.push(reader.await.expect("the reader finishes"));
    }
    app.state.cache.hooks.set_fill(None);
    (responses, app.state.cache.loads() - before)
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

// ---------------------------------------------------------------------------
// Hits and negative caching

async fn repeated_reads_and_revalidations_do_not_reach_the_store(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = publish(app, &ada, "Cached", &["rust"]).await;
    let uris = [
        article_uri(id),
        ARTICLES.to_owned(),
        format!("{ARTICLES}?tag=rust&author=ada"),
        "/api/v1/tags".to_owned(),
        format!("{}/comments", article_uri(id)),
    ];
    for uri in &uris {
        let first = app.get(uri, None).await;
        assert_eq!(first.status, StatusCode::OK, "{uri}: {}", first.text());
        let loads = app.state.cache.loads();

        let second = app.get(uri, None).await;
        assert_eq!(second.status, StatusCode::OK, "{uri}");
        assert_eq!(second.body, first.body, "{uri}");
        assert_eq!(
            app.state.cache.loads(),
            loads,
            "{uri}: a repeated read loaded"
        );

        let etag = first.header("etag");
        let revalidated = get_with(app, uri, &[("if-none-match", etag)]).await;
        assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(revalidated.body.is_empty(), "{uri}: 304 with a body");
        assert_eq!(revalidated.header("etag"), etag, "{uri}");
        assert_eq!(
            app.state.cache.loads(),
            loads,
            "{uri}: a revalidation loaded"
        );
    }
}

async fn a_missing_article_is_looked_up_once_and_found_as_soon_as_it_is_created(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let last = publish(app, &ada, "Existing", &[]).await;
    let next = last + 1;
    let loads = app.state.cache.loads();

    for _ in 0..2 {
        let missing = app.get(&article_uri(next), None).await;
        missing.problem(StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.state.cache.loads(),
        loads + 1,
        "the second read of a missing article loaded again"
    );

    let created = publish(app, &ada, "Newcomer", &[]).await;
    assert_eq!(
        created, next,
        "ids are not sequential; the test needs them to be"
    );
    let found = app.get(&article_uri(next), None).await;
    assert_eq!(title(&found), "Newcomer", "a cached 404 hid a new article");
}

// ---------------------------------------------------------------------------
// Invalidation on writes, one instance

async fn a_patch_shows_at_once_in_the_article_every_list_and_the_tags(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let token = Some(ada.token.as_str());
    let id = publish(app, &ada, "Before", &["rust"]).await;
    let uri = article_uri(id);
    let (all, by_author) = (ARTICLES.to_owned(), format!("{ARTICLES}?author=ada"));
    let (rust, elixir) = (
        format!("{ARTICLES}?tag=rust"),
        format!("{ARTICLES}?tag=elixir"),
    );
    // Warm everything.
    assert_eq!(title(&app.get(&uri, None).await), "Before");
    for list in [&all, &by_author, &rust] {
        assert_eq!(titles(&app.get(list, None).await), ["Before"], "{list}");
    }
    assert!(titles(&app.get(&elixir, None).await).is_empty());
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "rust", "articles": 1}])
    );

    let patched = app
        .patch(&uri, json!({"title": "After", "tags": ["elixir"]}), token)
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());

    assert_eq!(title(&app.get(&uri, None).await), "After");
    for list in [&all, &by_author, &elixir] {
        assert_eq!(titles(&app.get(list, None).await), ["After"], "{list}");
    }
    assert!(titles(&app.get(&rust, None).await).is_empty(), "{rust}");
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "elixir", "articles": 1}])
    );
}

async fn a_put_and_a_delete_show_at_once_in_the_article_and_the_lists(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let token = Some(ada.token.as_str());
    let id = publish(app, &ada, "Before", &["rust"]).await;
    let uri = article_uri(id);
    let comments = format!("{uri}/comments");
    let lists = [
        ARTICLES.to_owned(),
        format!("{ARTICLES}?author=ada"),
        format!("{ARTICLES}?tag=rust"),
    ];
    assert_eq!(title(&app.get(&uri, None).await), "Before");
    for list in &lists {
        assert_eq!(titles(&app.get(list, None).await), ["Before"], "{list}");
    }
    assert_eq!(app.get(&comments, None).await.status, StatusCode::OK);

    let replaced = app
        .put(
            &uri,
            json!({"title": "Replaced", "body": "All new.", "status": "published"}),
            token,
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text());
    let read = app.get(&uri, None).await;
    assert_eq!(title(&read), "Replaced");
    assert_eq!(read.json()["tags"], json!([]));
    assert_eq!(titles(&app.get(&lists[0], None).await), ["Replaced"]);
    assert_eq!(titles(&app.get(&lists[1], None).await), ["Replaced"]);
    assert!(titles(&app.get(&lists[2], None).await).is_empty());
    assert_eq!(tag_counts(&app.get("/api/v1/tags", None).await), json!([]));

    let deleted = app.delete(&uri, token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    app.get(&uri, None).await.problem(StatusCode::NOT_FOUND);
    app.get(&comments, None)
        .await
        .problem(StatusCode::NOT_FOUND);
    for list in &lists {
        assert!(titles(&app.get(list, None).await).is_empty(), "{list}");
    }
}

async fn a_new_article_shows_at_once_in_warm_lists_and_tags(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    publish(app, &ada, "First", &["rust"]).await;
    let lists = [
        ARTICLES.to_owned(),
        format!("{ARTICLES}?author=ada"),
        format!("{ARTICLES}?tag=rust"),
    ];
    let search = format!("{ARTICLES}?q=second");
    for list in &lists {
        assert_eq!(titles(&app.get(list, None).await), ["First"], "{list}");
    }
    assert!(titles(&app.get(&search, None).await).is_empty());
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "rust", "articles": 1}])
    );

    publish(app, &ada, "Second", &["rust"]).await;

    for list in &lists {
        assert_eq!(
            titles(&app.get(list, None).await),
            ["Second", "First"],
            "{list}"
        );
    }
    assert_eq!(titles(&app.get(&search, None).await), ["Second"]);
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "rust", "articles": 2}])
    );
}

async fn comments_show_at_once_in_the_warm_comment_list_when_written_and_deleted(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Reader).await;
    let id = publish(app, &ada, "Discussed", &[]).await;
    let comments = format!("{}/comments", article_uri(id));
    let bodies = async || -> Vec<String> {
        let response = app.get(&comments, None).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        response.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|c| c["body"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(bodies().await.is_empty());

    let created = app
        .post(&comments, json!({"body": "First!"}), Some(&bob.token))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(bodies().await, ["First!"]);

    let location = created.header("location").to_owned();
    let deleted = app.delete(&location, Some(&bob.token)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert!(
        bodies().await.is_empty(),
        "a deleted comment is still listed"
    );
}

/// Usernames match case-insensitively on both backends, so `?author=ADA`
/// lists ada's articles; a write by ada must refresh that list too.
async fn an_author_list_asked_for_in_another_case_shows_a_patch_at_once(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = publish(app, &ada, "Before", &[]).await;
    let list = format!("{ARTICLES}?author=ADA");
    assert_eq!(
        titles(&app.get(&list, None).await),
        ["Before"],
        "precondition: author names match in any case"
    );

    retitle(app, &ada, id, "After").await;

    assert_eq!(
        titles(&app.get(&list, None).await),
        ["After"],
        "{list} still serves the list from before the write"
    );
}

// ---------------------------------------------------------------------------
// The race between a slow reader and a writer

/// Reader A reads the old article, then is held before filling the cache; a
/// writer changes the article and returns; then A fills. Whatever A itself
/// answers, no read that starts after the write may see the old title.
async fn a_read_that_raced_a_write_is_never_served_after_the_write(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = publish(app, &ada, "Old", &[]).await;
    let uri = article_uri(id);
    let pause = pause_first_fill(app, move |key| *key == Key::article(id));
    let loads_before = app.state.cache.loads();

    let reader_a = app.spawn(get_request(&uri, &[]));
    pause.reached.notified().await;
    let patched = app
        .patch(&uri, json!({"title": "New"}), Some(&ada.token))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    // Starts after the write: it joins A's load or follows it.
    let reader_c = app.spawn(get_request(&uri, &[]));
    pause.release.notify_one();

    let a = reader_a.await.expect("reader A finishes");
    assert!(["Old", "New"].contains(&title(&a).as_str()));
    let c = reader_c.await.expect("reader C finishes");
    assert_eq!(
        title(&c),
        "New",
        "a read after the write got A's stale load"
    );
    for _ in 0..3 {
        assert_eq!(title(&app.get(&uri, None).await), "New");
    }
    let loads = app.state.cache.loads() - loads_before;
    assert!(
        loads >= 2,
        "A's stale load was not replaced by a reload ({loads} loads)"
    );
    let settled = app.state.cache.loads();
    assert_eq!(title(&app.get(&uri, None).await), "New");
    assert_eq!(
        app.state.cache.loads(),
        settled,
        "the reload was not cached"
    );
    app.state.cache.hooks.set_fill(None);
}

/// The same race across instances: A's stale fill lands in the shared tier
/// after B's write; B (and a fresh instance) must not be served it.
#[tokio::test]
async fn a_stale_fill_from_one_instance_is_never_served_by_another() {
    let redis = SharedRedis::new();
    let a = redis_app(&redis).await;
    let b = redis_sibling(&a, &redis).await;
    let ada = a.user("ada", Role::Author).await;
    let id = publish(&a, &ada, "Old", &[]).await;
    let uri = article_uri(id);
    let pause = pause_first_fill(&a, move |key| *key == Key::article(id));

    let reader_a = a.spawn(get_request(&uri, &[]));
    pause.reached.notified().await;
    let patched = b
        .patch(&uri, json!({"title": "New"}), Some(&ada.token))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    pause.release.notify_one();
    let from_a = reader_a.await.expect("reader A finishes");
    assert_eq!(from_a.status, StatusCode::OK);

    assert_eq!(
        title(&b.get(&uri, None).await),
        "New",
        "B served A's stale fill"
    );
    let fresh = redis_sibling(&a, &redis).await;
    assert_eq!(
        title(&fresh.get(&uri, None).await),
        "New",
        "a fresh instance served A's stale fill from the shared tier"
    );
    let delay = eventually(Duration::from_secs(2), async || {
        title(&a.get(&uri, None).await) == "New"
    })
    .await;
    assert!(delay.is_some(), "A kept serving its stale fill for 2 s");
    a.state.cache.hooks.set_fill(None);
}

/// Without the write, the other instance does use the shared tier (so the
/// test above is not passing merely because nothing is shared).
#[tokio::test]
async fn a_second_instance_serves_what_the_first_loaded_without_loading_it() {
    let redis = SharedRedis::new();
    let a = redis_app(&redis).await;
    let b = redis_sibling(&a, &redis).await;
    let ada = a.user("ada", Role::Author).await;
    let id = publish(&a, &ada, "Shared", &["rust"]).await;
    for uri in [article_uri(id), format!("{ARTICLES}?tag=rust")] {
        let from_a = a.get(&uri, None).await;
        assert_eq!(from_a.status, StatusCode::OK, "{}", from_a.text());
        let loads = b.state.cache.loads();
        let from_b = b.get(&uri, None).await;
        assert_eq!(from_b.status, StatusCode::OK, "{}", from_b.text());
        assert_eq!(from_b.body, from_a.body, "{uri}");
        assert_eq!(from_b.header("etag"), from_a.header("etag"), "{uri}");
        assert_eq!(b.state.cache.loads(), loads, "{uri}: B loaded it again");
    }
}

/// The invalidation channel's heartbeat must not drop the subscription (a
/// reconnect bumps the epoch and empties the local tier).
#[tokio::test]
async fn a_subscribed_instance_keeps_its_local_entries_across_heartbeats() {
    let redis = SharedRedis::new();
    let app = redis_app(&redis).await;
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(publish(&app, &ada, "Steady", &[]).await);
    assert_eq!(title(&app.get(&uri, None).await), "Steady");
    let loads = app.state.cache.loads();

    // Heartbeats run every 500 ms.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(app.state.cache.is_subscribed());
    assert_eq!(title(&app.get(&uri, None).await), "Steady");
    assert_eq!(
        app.state.cache.loads(),
        loads,
        "the local entry was dropped while nothing was written"
    );
}

// ---------------------------------------------------------------------------
// Two instances

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_sockets_see_each_others_writes_within_two_seconds() {
    let redis = SharedRedis::new();
    let a = redis_app(&redis).await;
    let b = redis_sibling(&a, &redis).await;
    let (server_a, server_b) = (
        Served::start(a.router.clone()).await,
        Served::start(b.router.clone()).await,
    );
    let ada = a.user("ada", Role::Author).await;
    let id = publish(&a, &ada, "Old", &[]).await;
    let uri = article_uri(id);
    assert_eq!(title(&server_a.get(&uri).await), "Old");
    assert_eq!(title(&server_b.get(&uri).await), "Old");
    let loads = b.state.cache.loads();
    assert_eq!(title(&server_b.get(&uri).await), "Old");
    assert_eq!(
        b.state.cache.loads(),
        loads,
        "precondition: B's copy is cached"
    );

    for (writer, reader, new_title) in [
        (&server_a, &server_b, "New"),
        (&server_b, &server_a, "Newer"),
    ] {
        let patched = writer
            .call(
                Method::PATCH,
                &uri,
                Some(json!({"title": new_title})),
                Some(&ada.token),
            )
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        let delay = eventually(Duration::from_secs(2), async || {
            title(&reader.get(&uri).await) == new_title
        })
        .await;
        eprintln!("cross-instance delay over sockets ({new_title}): {delay:?}");
        assert!(
            delay.is_some(),
            "the other instance still served the old title 2 s after the write"
        );
    }
}

#[tokio::test]
async fn a_write_on_one_instance_reaches_the_other_instances_warm_lists_and_tags_within_two_seconds()
 {
    let redis = SharedRedis::new();
    let a = redis_app(&redis).await;
    let b = redis_sibling(&a, &redis).await;
    let ada = a.user("ada", Role::Author).await;
    let id = publish(&a, &ada, "Old", &["rust"]).await;
    let (all, by_author, rust) = (
        ARTICLES.to_owned(),
        format!("{ARTICLES}?author=ada"),
        format!("{ARTICLES}?tag=rust"),
    );
    for list in [&all, &by_author, &rust] {
        assert_eq!(titles(&a.get(list, None).await), ["Old"], "{list}");
        assert_eq!(titles(&b.get(list, None).await), ["Old"], "{list}");
    }
    assert_eq!(title(&b.get(&article_uri(id), None).await), "Old");
    b.get("/api/v1/tags", None).await;

    let patched = a
        .patch(
            &article_uri(id),
            json!({"title": "New", "tags": ["go"]}),
            Some(&ada.token),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let delay = eventually(Duration::from_secs(2), async || {
        title(&b.get(&article_uri(id), None).await) == "New"
            && titles(&b.get(&all, None).await) == ["New"]
            && titles(&b.get(&by_author, None).await) == ["New"]
            && titles(&b.get(&rust, None).await).is_empty()
            && tag_counts(&b.get("/api/v1/tags", None).await)
                == json!([{"name": "go", "articles": 1}])
    })
    .await;
    eprintln!("cross-instance delay in process (article, lists, tags): {delay:?}");
    assert!(
        delay.is_some(),
        "B's lists: {:?} {:?} {:?}, tags {} (2 s after the write)",
        titles(&b.get(&all, None).await),
        titles(&b.get(&by_author, None).await),
        titles(&b.get(&rust, None).await),
        tag_counts(&b.get("/api/v1/tags", None).await),
    );
}

// ---------------------------------------------------------------------------
// Time to live

/// The configuration promises `ttl_secs` bounds how long a change made
/// behind the cache's back (the seeding CLI, a manual fix in the database)
/// stays invisible.
async fn an_entry_past_its_ttl_shows_a_change_made_behind_the_cache(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = publish(app, &ada, "Cached", &[]).await;
    let uri = article_uri(id);
    assert_eq!(title(&app.get(&uri, None).await), "Cached");

    let store = &app.state.store;
    let current = store.find_article(id).await.unwrap().expect("the article");
    let content = ArticleContent {
        slug: current.slug.clone(),
        title: "Changed behind the cache".into(),
        summary: current.summary.clone(),
        body: current.body.clone().unwrap_or_default(),
        status: ArticleStatus::Published,
        tags: vec![],
    };
    store
        .update_article(id, current.version, &content)
        .await
        .expect("the direct update works");
    assert_eq!(
        title(&app.get(&uri, None).await),
        "Cached",
        "precondition: cached"
    );

    app.state.cache.hooks.advance(Duration::from_millis(1200));
    assert_eq!(
        title(&app.get(&uri, None).await),
        "Changed behind the cache",
        "an entry older than ttl_secs (1) was served"
    );
}

#[tokio::test]
async fn an_entry_past_its_ttl_shows_a_change_made_behind_the_cache_in_l1() {
    let app = TestApp::with_settings(Backend::MySql, |s| s.cache.ttl_secs = 1).await;
    an_entry_past_its_ttl_shows_a_change_made_behind_the_cache(&app).await;
}

#[tokio::test]
async fn an_entry_past_its_ttl_shows_a_change_made_behind_the_cache_with_redis() {
    let redis = SharedRedis::new();
    let app = TestApp::with_settings(Backend::MySql, |s| {
        redis.configure(s);
        s.cache.ttl_secs = 1;
    })
    .await;
    subscribed(&app).await;
    an_entry_past_its_ttl_shows_a_change_made_behind_the_cache(&app).await;
}

// ---------------------------------------------------------------------------
// Redis outage

async fn readiness(app: &TestApp) -> Value {
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

fn check(health: &Value, name: &str) -> Value {
    health["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .map(|c| c["status"].clone())
        .unwrap_or_else(|| panic!("no {name} check in {health}"))
}

/// Keys in `redis` holding a cached copy of the named response (under the
/// default prefix).
async fn cached_copies(redis: &RedisServer, name: &str) -> usize {
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis answers");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("feedgate:e:{{{name}}}"))
        .query_async(&mut conn)
        .await
        .expect("KEYS works");
    keys.len()
}

#[tokio::test]
async fn a_redis_outage_degrades_without_errors_and_leaves_nothing_stale_behind() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let a = TestApp::with_settings(Backend::MySql, |s| s.redis.url = Secret::new(&url)).await;
    subscribed(&a).await;
    let warm = a.sibling(|_| {}).await;
    subscribed(&warm).await;
    let ada = a.user("ada", Role::Author).await;
    let id = publish(&a, &ada, "Old", &[]).await;
    let uri = article_uri(id);
    assert_eq!(title(&a.get(&uri, None).await), "Old");
    assert_eq!(title(&warm.get(&uri, None).await), "Old");
    assert_eq!(titles(&a.get(ARTICLES, None).await), ["Old"]);
    assert_eq!(cached_copies(&redis, &format!("a:{id}")).await, 1);

    redis.stop().await;
    let noticed = eventually(Duration::from_secs(5), async || {
        !a.state.cache.is_subscribed()
    })
    .await;
    assert!(
        noticed.is_some(),
        "the instance did not notice Redis going away"
    );
    let health = readiness(&a).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(check(&health, "redis"), "down", "{health}");
    assert_eq!(check(&health, "database"), "ok", "{health}");
    assert_eq!(title(&a.get(&uri, None).await), "Old");
    let patched = a
        .patch(
            &uri,
            json!({"title": "Written during the outage"}),
            Some(&ada.token),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    assert_eq!(title(&a.get(&uri, None).await), "Written during the outage");
    assert_eq!(
        titles(&a.get(ARTICLES, None).await),
        ["Written during the outage"]
    );
    // The other instance cannot hear the write, so it stops trusting its
    // local copy once that is older than degraded_ttl_ms (1000).
    let delay = eventually(Duration::from_secs(3), async || {
        title(&warm.get(&uri, None).await) == "Written during the outage"
    })
    .await;
    eprintln!("cross-instance delay while Redis is down: {delay:?}");
    assert!(
        delay.is_some(),
        "the other instance served its old copy for 3 s during the outage"
    );

    redis.restart().await;
    assert_eq!(
        cached_copies(&redis, &format!("a:{id}")).await,
        1,
        "precondition: the copy from before the outage survived the restart"
    );
    subscribed(&a).await;
    subscribed(&warm).await;
    let ready = eventually(Duration::from_secs(5), async || {
        readiness(&a).await["status"] == "ready"
    })
    .await;
    assert!(
        ready.is_some(),
        "readiness stayed degraded after Redis returned"
    );
    let fresh = a.sibling(|_| {}).await;
    subscribed(&fresh).await;
    for (name, app) in [("fresh", &fresh), ("warm", &warm), ("writer", &a)] {
        assert_eq!(
            title(&app.get(&uri, None).await),
            "Written during the outage",
            "the {name} instance served the article from before the outage"
        );
    }
    assert_eq!(
        titles(&fresh.get(ARTICLES, None).await),
        ["Written during the outage"]
    );
}

// ---------------------------------------------------------------------------
// Database outage

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

#[tokio::test]
async fn with_the_database_cut_off_cached_reads_answer_and_the_rest_fail_fast_with_503() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |_| {}).await;
    let ada = app.user("ada", Role::Author).await;
    let cached = publish(&app, &ada, "Cached", &["rust"]).await;
    let uncached = publish(&app, &ada, "Uncached", &[]).await;
    let warm = app.get(&article_uri(cached), None).await;
    assert_eq!(title(&warm), "Cached");

    proxy.cut();
    let read = app.get(&article_uri(cached), None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.body, warm.body);
    let problem = app
        .get(&article_uri(uncached), None)
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["code"], "unavailable", "{problem}");
    let started = Instant::now();
    let patch = app
        .patch(
            &article_uri(cached),
            json!({"title": "Lost"}),
            Some(&ada.token),
        )
        .await;
    let took = started.elapsed();
    patch.problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        took < Duration::from_secs(3),
        "the failing PATCH took {took:?}"
    );
    let health = app.get("/readyz", None).await;
    assert_eq!(
        health.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        health.text()
    );

    proxy.restore().await;
    let after = app.get(&article_uri(cached), None).await;
    assert_eq!(title(&after), "Cached");
    assert_eq!(after.json()["version"], 1, "{}", after.text());
    assert_eq!(
        title(&app.get(&article_uri(uncached), None).await),
        "Uncached"
    );
    retitle(&app, &ada, cached, "Recovered").await;
    assert_eq!(
        title(&app.get(&article_uri(cached), None).await),
        "Recovered"
    );
}

#[tokio::test]
async fn a_write_cut_off_mid_transaction_leaves_the_article_as_it_was() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |_| {}).await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Old", &["rust"]).await;
    let uri = article_uri(id);
    assert_eq!(title(&app.get(&uri, None).await), "Old");

    // Linking two tags is the last statement of a write with two tags: by
    // then the row is updated and the old links deleted, uncommitted.
    proxy.cut_when_client_sends(b"WHERE name IN (?, ?)");
    let patch = app
        .patch(
            &uri,
            json!({"title": "Half", "tags": ["go", "zig"]}),
            Some(&ada.token),
        )
        .await;
    patch.problem(StatusCode::SERVICE_UNAVAILABLE);
    proxy.restore().await;

    let read = app.get(&uri, None).await;
    assert_eq!(title(&read), "Old");
    assert_eq!(read.json()["tags"], json!(["rust"]), "{}", read.text());
    assert_eq!(read.json()["version"], 1, "{}", read.text());
    assert!(titles(&app.get(&format!("{ARTICLES}?tag=go"), None).await).is_empty());
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "rust", "articles": 1}])
    );
}

#[tokio::test]
async fn past_its_ttl_an_entry_is_served_stale_while_the_database_is_down() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |s| {
        s.cache.ttl_secs = 1;
        s.cache.stale_if_error_secs = 3600;
    })
    .await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Stale but fine", &[]).await;
    let warm = app.get(&article_uri(id), None).await;
    assert_eq!(title(&warm), "Stale but fine");

    app.state.cache.hooks.advance(Duration::from_millis(1200));
    proxy.cut();
    let loads = app.state.cache.loads();
    let read = app.get(&article_uri(id), None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.body, warm.body);
    assert_eq!(
        app.state.cache.loads(),
        loads + 1,
        "the expired entry was served without trying the database"
    );
    let stale = metric(
        &metrics_text(&app).await,
        "feedgate_cache_stale_served_total",
        &[],
    );
    assert!(stale >= 1.0, "no stale serving was counted");
}

// ---------------------------------------------------------------------------
// HTTP caching headers

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

async fn an_article_is_served_in_brotli_gzip_or_identity_as_accepted(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(long_article(app, &ada).await);
    let plain = get_with(app, &uri, &[]).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    assert!(
        plain.body.len() > 5000,
        "the body is {} bytes",
        plain.body.len()
    );

    let br = get_with(app, &uri, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(br.header("content-encoding"), "br");
    assert!(br.body.len() < plain.body.len());
    assert_eq!(unbrotli(&br.body), plain.body);

    let gzip = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzip.header("content-encoding"), "gzip");
    assert!(gzip.body.len() < plain.body.len());
    assert_eq!(gunzip(&gzip.body), plain.body);

    let identity = get_with(app, &uri, &[("accept-encoding", "identity")]).await;
    assert!(identity.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(identity.body, plain.body);

    for response in [&plain, &br, &gzip, &identity] {
        assert_eq!(response.header("vary"), "Accept-Encoding");
        assert_eq!(response.header("content-type"), "application/json");
    }
    let etags = [plain.header("etag"), br.header("etag"), gzip.header("etag")];
    assert_ne!(etags[0], etags[1]);
    assert_ne!(etags[0], etags[2]);
    assert_ne!(etags[1], etags[2]);
    assert_eq!(identity.header("etag"), etags[0]);
}

async fn if_none_match_with_any_codings_etag_or_its_weak_form_gets_304(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(long_article(app, &ada).await);
    let gzip = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    let br = get_with(app, &uri, &[("accept-encoding", "br")]).await;
    let gzip_etag = gzip.header("etag").to_owned();
    let weak = format!("W/{gzip_etag}");
    for (tag, coding) in [
        (gzip_etag.as_str(), "gzip"),
        (weak.as_str(), "gzip"),
        (br.header("etag"), "identity"),
        (gzip_etag.as_str(), "identity"),
    ] {
        let response = get_with(
            app,
            &uri,
            &[("if-none-match", tag), ("accept-encoding", coding)],
        )
        .await;
        assert_eq!(
            response.status,
            StatusCode::NOT_MODIFIED,
            "{tag} / {coding}"
        );
        assert!(response.body.is_empty());
    }
    let other = get_with(app, &uri, &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(other.status, StatusCode::OK);
}

/// `Accept-Encoding: br;q=0, *` refuses brotli explicitly (RFC 9110
/// 12.5.3: the wildcard covers only codings not listed).
async fn an_explicitly_refused_coding_is_not_served_even_when_a_wildcard_allows_others(
    app: &TestApp,
) {
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(long_article(app, &ada).await);
    let gzip = get_with(app, &uri, &[("accept-encoding", "br;q=0, gzip")]).await;
    assert_eq!(gzip.header("content-encoding"), "gzip");
    let wildcard = get_with(app, &uri, &[("accept-encoding", "br;q=0, *")]).await;
    assert_eq!(wildcard.status, StatusCode::OK);
    assert_ne!(
        wildcard
            .headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.as_bytes()),
        Some(&b"br"[..]),
        "brotli was served although the client refused it with q=0"
    );
}

/// The brief's contract: `If-Match` takes the ETag from a GET; a client
/// that accepts gzip sees the gzip variant's ETag.
async fn if_match_accepts_the_etag_a_compressed_read_returned(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(long_article(app, &ada).await);
    let read = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(read.header("content-encoding"), "gzip");
    let request = Request::patch(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", ada.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, read.header("etag"))
        .body(Body::from(json!({"title": "Edited"}).to_string()))
        .expect("a valid request");
    let patched = app.send(request).await;
    assert_eq!(
        patched.status,
        StatusCode::OK,
        "If-Match {} from the gzip GET: {}",
        read.header("etag"),
        patched.text()
    );
}

async fn surrogate_keys_name_the_article_on_reads_and_the_list_and_its_articles_on_lists(
    app: &TestApp,
) {
    let ada = app.user("ada", Role::Author).await;
    let rusty = publish(app, &ada, "Rusty", &["rust"]).await;
    let other = publish(app, &ada, "Other", &[]).await;
    let keys = |response: &TestResponse| -> (Vec<String>, Vec<String>) {
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let split = |name: &str, by: char| -> Vec<String> {
            response
                .header(name)
                .split(by)
                .map(|s| s.trim().to_owned())
                .collect()
        };
        (split("surrogate-key", ' '), split("cache-tag", ','))
    };

    let detail = keys(&app.get(&article_uri(rusty), None).await);
    for set in [&detail.0, &detail.1] {
        assert!(set.contains(&format!("article-{rusty}")), "{set:?}");
        assert!(!set.contains(&format!("article-{other}")), "{set:?}");
    }
    let list = keys(&app.get(ARTICLES, None).await);
    for set in [&list.0, &list.1] {
        assert!(set.contains(&"articles".to_owned()), "{set:?}");
        assert!(set.contains(&format!("article-{rusty}")), "{set:?}");
        assert!(set.contains(&format!("article-{other}")), "{set:?}");
    }
    let tagged = keys(&app.get(&format!("{ARTICLES}?tag=rust"), None).await);
    for set in [&tagged.0, &tagged.1] {
        assert!(set.contains(&"tag-rust".to_owned()), "{set:?}");
        assert!(set.contains(&format!("article-{rusty}")), "{set:?}");
        assert!(!set.contains(&format!("article-{other}")), "{set:?}");
    }

    // Every other public read names what a purge reaches it by.
    let comment = app
        .post(
            &format!("{}/comments", article_uri(rusty)),
            json!({"body": "Nice."}),
            Some(&ada.token),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.text());
    let comment_id = comment.json()["id"].as_i64().unwrap();
    let expected = [
        (
            format!("/api/v1/comments/{comment_id}"),
            vec![format!("comment-{comment_id}"), format!("article-{rusty}")],
        ),
        (
            format!("{}/comments", article_uri(rusty)),
            vec![format!("comments-{rusty}")],
        ),
        (
            format!("/api/v1/users/{}", ada.id),
            vec![format!("user-{}", ada.id)],
        ),
        ("/api/v1/tags".to_owned(), vec!["tags".to_owned()]),
    ];
    for (uri, wanted) in expected {
        let (surrogate, cache_tag) = keys(&app.get(&uri, None).await);
        for key in wanted {
            assert!(surrogate.contains(&key), "{uri}: {surrogate:?}");
            assert!(cache_tag.contains(&key), "{uri}: {cache_tag:?}");
        }
    }
}

async fn cache_control_is_the_configured_policy_on_public_reads_and_no_store_otherwise(
    app: &TestApp,
) {
    let control = app.state.settings.cache.control.clone();
    let ada = app.user("ada", Role::Author).await;
    let token = Some(ada.token.as_str());
    let id = publish(app, &ada, "Public", &["rust"]).await;
    let public = [
        (article_uri(id), &control.article),
        (ARTICLES.to_owned(), &control.articles),
        (format!("{}/comments", article_uri(id)), &control.comments),
        ("/api/v1/tags".to_owned(), &control.tags),
    ];
    for (uri, policy) in public {
        let response = app.get(&uri, None).await;
        assert_eq!(response.status, StatusCode::OK, "{uri}");
        assert_eq!(
            response.header("cache-control"),
            policy.to_str().unwrap(),
            "{uri}"
        );
    }

    let created = app
        .post(
            ARTICLES,
            json!({"title": "Draft", "body": "Not yet."}),
            token,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("cache-control"), "no-store");
    let draft = article_uri(created.json()["id"].as_i64().expect("an id"));
    for uri in [draft.clone(), format!("{ARTICLES}?status=draft")] {
        let response = app.get(&uri, token).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{uri}: {}",
            response.text()
        );
        assert_eq!(
            response.header("cache-control"),
            "private, no-store",
            "{uri}"
        );
    }
    app.get(&draft, None).await.problem(StatusCode::NOT_FOUND);
    let patched = app
        .patch(&article_uri(id), json!({"title": "Edited"}), token)
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.header("cache-control"), "no-store");
    let replaced = app
        .put(
            &draft,
            json!({"title": "Draft", "body": "Still not."}),
            token,
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.header("cache-control"), "no-store");
}

// ---------------------------------------------------------------------------
// CDN purges

type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A purge endpoint on a free port that records every POST.
async fn purge_endpoint() -> (String, Received, Served) {
    let received: Received = Arc::default();
    async fn record(
        State(received): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        received.lock().unwrap().push((headers, json));
        StatusCode::NO_CONTENT
    }
    let router = Router::new()
        .route("/purge", post(record))
        .with_state(received.clone());
    let served = Served::start(router).await;
    (format!("http://{}/purge", served.addr), received, served)
}

#[tokio::test]
async fn a_write_posts_its_surrogate_keys_to_the_purge_url() {
    let (url, received, _server) = purge_endpoint().await;
    let app = TestApp::with_settings(Backend::MySql, |s| {
        s.cache.purge_url = Some(url.parse().unwrap())
    })
    .await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Purged", &["rust"]).await;
    let found = eventually(Duration::from_secs(2), async || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    assert!(found.is_some(), "the create was not purged");
    received.lock().unwrap().clear();

    let patched = app
        .patch(
            &article_uri(id),
            json!({"title": "Changed"}),
            Some(&ada.token),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let found = eventually(Duration::from_secs(2), async || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    assert!(found.is_some(), "no purge arrived within 2 s of the PATCH");
    let (headers, body) = received.lock().unwrap()[0].clone();
    let keys: Vec<&str> = body["surrogate_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no surrogate_keys in {body}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        format!("article-{id}"),
        "articles".into(),
        "tag-rust".into(),
        "author-ada".into(),
    ] {
        assert!(
            keys.contains(&expected.as_str()),
            "{expected} missing from {body}"
        );
    }
    let header_keys = headers
        .get("surrogate-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        header_keys.split(' ').any(|k| k == format!("article-{id}")),
        "{header_keys:?}"
    );
}

#[tokio::test]
async fn a_write_returns_promptly_when_the_purge_endpoint_hangs_or_refuses() {
    // Accepts connections and never answers.
    let hanging = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let hanging_url = format!("http://{}/purge", hanging.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            held.push(socket);
        }
    });
    let refused_url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        format!("http://{}/purge", listener.local_addr().unwrap())
    };
    let app = TestApp::with_settings(Backend::MySql, |s| {
        s.cache.purge_url = Some(hanging_url.parse().unwrap())
    })
    .await;
    let other = app
        .sibling(|s| s.cache.purge_url = Some(refused_url.parse().unwrap()))
        .await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Written", &[]).await;

    for (name, instance) in [("hanging", &app), ("refusing", &other)] {
        let new_title = format!("Written past a {name} purge endpoint");
        let started = Instant::now();
        let patched = instance
            .patch(
                &article_uri(id),
                json!({"title": new_title}),
                Some(&ada.token),
            )
            .await;
        let took = started.elapsed();
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        assert!(
            took < Duration::from_secs(1),
            "{name}: the write waited {took:?} for the purge"
        );
        assert_eq!(
            title(&instance.get(&article_uri(id), None).await),
            new_title
        );
    }
}

// ---------------------------------------------------------------------------
// Metrics

async fn metrics_count_hits_misses_and_fills_by_tier_and_route(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = publish(app, &ada, "Counted", &[]).await;
    let count = |text: &str, tier: &str, result: &str| {
        metric(
            text,
            "feedgate_cache_lookups_total",
            &[("tier", tier), ("route", "article"), ("result", result)],
        )
    };
    let fills = |text: &str| metric(text, "feedgate_cache_fills_total", &[("route", "article")]);
    let before = metrics_text(app).await;

    for _ in 0..3 {
        assert_eq!(app.get(&article_uri(id), None).await.status, StatusCode::OK);
    }

    let after = metrics_text(app).await;
    assert!(
        after.contains("feedgate_cache_lookups_total{"),
        "no lookup series in:\n{after}"
    );
    let hits = count(&after, "l1", "hit") - count(&before, "l1", "hit");
    let misses = count(&after, "l1", "miss") - count(&before, "l1", "miss");
    let filled = fills(&after) - fills(&before);
    assert!(hits >= 2.0, "l1 hits went up by {hits}:\n{after}");
    assert!(misses >= 1.0, "l1 misses went up by {misses}:\n{after}");
    assert!(filled >= 1.0, "fills went up by {filled}:\n{after}");
}

on_both_backends!(
    repeated_reads_and_revalidations_do_not_reach_the_store,
    a_missing_article_is_looked_up_once_and_found_as_soon_as_it_is_created,
    a_patch_shows_at_once_in_the_article_every_list_and_the_tags,
    a_put_and_a_delete_show_at_once_in_the_article_and_the_lists,
    a_new_article_shows_at_once_in_warm_lists_and_tags,
    comments_show_at_once_in_the_warm_comment_list_when_written_and_deleted,
    an_author_list_asked_for_in_another_case_shows_a_patch_at_once,
    a_read_that_raced_a_write_is_never_served_after_the_write,
    an_article_is_served_in_brotli_gzip_or_identity_as_accepted,
    if_none_match_with_any_codings_etag_or_its_weak_form_gets_304,
    an_explicitly_refused_coding_is_not_served_even_when_a_wildcard_allows_others,
    if_match_accepts_the_etag_a_compressed_read_returned,
    surrogate_keys_name_the_article_on_reads_and_the_list_and_its_articles_on_lists,
    cache_control_is_the_configured_policy_on_public_reads_and_no_store_otherwise,
    metrics_count_hits_misses_and_fills_by_tier_and_route,
);

with_redis!(
    repeated_reads_and_revalidations_do_not_reach_the_store,
    a_missing_article_is_looked_up_once_and_found_as_soon_as_it_is_created,
    a_patch_shows_at_once_in_the_article_every_list_and_the_tags,
    a_put_and_a_delete_show_at_once_in_the_article_and_the_lists,
    a_new_article_shows_at_once_in_warm_lists_and_tags,
    comments_show_at_once_in_the_warm_comment_list_when_written_and_deleted,
    a_read_that_raced_a_write_is_never_served_after_the_write,
);
