//! The database going away under cached reads and in-flight writes: what
//! was cached keeps serving (stale-if-error) unless a committed write made
//! it old, writes fail fast and whole, and readiness says which dependency
//! is down.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use feedgate::domain::Role;
use serde_json::json;

use super::{
    ARTICLES, app_behind_proxy, article_uri, metric, metrics_text, publish, redis_sibling, retitle,
    subscribed, tag_counts, title, titles,
};
use crate::support::{SharedRedis, mysql_proxy};

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

#[tokio::test]
async fn a_failed_write_does_not_stop_cached_articles_and_lists_serving_while_the_database_is_down()
{
    let redis = SharedRedis::new();
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |s| redis.configure(s)).await;
    subscribed(&app).await;
    let other = redis_sibling(&app, &redis).await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Before", &["rust"]).await;
    let pages = [
        article_uri(id),
        ARTICLES.to_owned(),
        format!("{ARTICLES}?tag=rust"),
        format!("{ARTICLES}?author=ada&sort=title"),
    ];
    let mut warm = Vec::new();
    for instance in [&app, &other] {
        for page in &pages {
            let response = instance.get(page, None).await;
            assert_eq!(response.status, StatusCode::OK, "{page}");
            warm.push(response.body);
        }
    }

    proxy.cut();
    let patch = app
        .patch(&article_uri(id), json!({"title": "Lost"}), Some(&ada.token))
        .await;
    patch.problem(StatusCode::SERVICE_UNAVAILABLE);

    let mut served = Vec::new();
    for instance in [&app, &other] {
        for page in &pages {
            let response = instance.get(page, None).await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{page} during the outage: {}",
                response.text()
            );
            served.push(response.body);
        }
    }
    assert_eq!(served, warm, "each page serves the copy it had");

    proxy.restore().await;
    retitle(&app, &ada, id, "After").await;
    assert_eq!(title(&app.get(&article_uri(id), None).await), "After");
    assert_eq!(titles(&app.get(ARTICLES, None).await), ["After"]);
}

#[tokio::test]
async fn a_write_cut_off_in_flight_leaves_the_cached_copy_serving() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |_| {}).await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Before", &[]).await;
    assert_eq!(title(&app.get(&article_uri(id), None).await), "Before");
    assert_eq!(titles(&app.get(ARTICLES, None).await), ["Before"]);

    proxy.cut_when_client_sends(b"UPDATE articles");
    let patch = app
        .patch(&article_uri(id), json!({"title": "Lost"}), Some(&ada.token))
        .await;
    patch.problem(StatusCode::SERVICE_UNAVAILABLE);

    assert_eq!(title(&app.get(&article_uri(id), None).await), "Before");
    assert_eq!(titles(&app.get(ARTICLES, None).await), ["Before"]);
}

#[tokio::test]
async fn after_a_committed_write_the_old_copy_is_never_served_even_while_the_database_is_down() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |_| {}).await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Before", &[]).await;
    assert_eq!(title(&app.get(&article_uri(id), None).await), "Before");
    assert_eq!(titles(&app.get(ARTICLES, None).await), ["Before"]);

    retitle(&app, &ada, id, "After").await;
    proxy.cut();

    for page in [article_uri(id), ARTICLES.to_owned()] {
        let response = app.get(&page, None).await;
        assert!(
            !response.text().contains("Before"),
            "{page} served the state before an acknowledged write: {}",
            response.text()
        );
    }
}

#[tokio::test]
async fn readiness_keeps_its_checks_when_the_database_is_down() {
    let redis = SharedRedis::new();
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |s| redis.configure(s)).await;
    subscribed(&app).await;

    proxy.cut();
    let health = app.get("/readyz", None).await;

    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.header("content-type"), "application/json");
    let body = health.json();
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(
        body["checks"],
        json!([{"name": "database", "status": "down"}, {"name": "redis", "status": "ok"}])
    );
}

#[tokio::test]
async fn once_the_database_is_known_down_every_reader_of_a_cached_page_is_answered_at_once() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |s| s.database.acquire_timeout_ms = 1000).await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Before", &["rust"]).await;
    let pages = [
        article_uri(id),
        ARTICLES.to_owned(),
        format!("{ARTICLES}?tag=rust"),
        format!("{ARTICLES}?sort=title&per_page=5"),
        format!("{ARTICLES}?author=ada"),
    ];
    let mut warm = Vec::new();
    for page in &pages {
        warm.push(app.get(page, None).await.body);
    }

    // Every page is past its fresh time (though still the committed state).
    app.state.cache.hooks.advance(Duration::from_secs(301));
    let stale_before = super::metric(
        &super::metrics_text(&app).await,
        "feedgate_cache_stale_served_total",
        &[],
    );
    // Then the database hangs (paused: connections stay open, nothing is
    // answered or refused). The first read to find it gone waits for it
    // once, for at most the acquire timeout.
    proxy.stall();
    let first = tokio::time::timeout(Duration::from_secs(5), app.get(&pages[1], None))
        .await
        .expect("the first read waits for the database at most the acquire timeout");
    assert_eq!(first.body, warm[1]);

    // From then on every reader of every cached page, however many at once,
    // is answered from what was cached without waiting for the database.
    let started = Instant::now();
    let readers: Vec<_> = (0..40)
        .map(|n| {
            app.spawn(
                crate::support::json_request(
                    axum::http::Method::GET,
                    &pages[n % pages.len()],
                    None,
                    None,
                )
                .map(axum::body::Body::from),
            )
        })
        .collect();
    for (n, reader) in readers.into_iter().enumerate() {
        let response = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("a stale read does not wait for the database")
            .expect("the reader finishes");
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.body, warm[n % pages.len()]);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "40 stale reads took {took:?}"
    );
    let stale_after = super::metric(
        &super::metrics_text(&app).await,
        "feedgate_cache_stale_served_total",
        &[],
    );
    assert!(
        stale_after >= stale_before + 41.0,
        "every read was a stale copy: {stale_before} then {stale_after}"
    );

    // Back: the next write is seen at once.
    proxy.cut();
    proxy.restore().await;
    let answered = super::eventually(Duration::from_secs(5), async || {
        app.patch(
            &article_uri(id),
            json!({"title": "After"}),
            Some(&ada.token),
        )
        .await
        .status
            == StatusCode::OK
    })
    .await;
    assert!(answered.is_some(), "the database never came back");
    assert_eq!(title(&app.get(&article_uri(id), None).await), "After");
    assert_eq!(titles(&app.get(ARTICLES, None).await), ["After"]);
}

#[tokio::test]
async fn a_write_the_database_rolled_back_makes_nothing_stale() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |_| {}).await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Before", &["rust"]).await;
    let pages = [
        article_uri(id),
        ARTICLES.to_owned(),
        format!("{ARTICLES}?tag=rust"),
    ];
    for page in &pages {
        assert_eq!(app.get(page, None).await.status, StatusCode::OK);
    }

    proxy.cut_when_client_sends(b"UPDATE articles");
    let patch = app
        .patch(&article_uri(id), json!({"title": "Lost"}), Some(&ada.token))
        .await;
    patch.problem(StatusCode::SERVICE_UNAVAILABLE);
    proxy.restore().await;

    let loads = app.state.cache.loads();
    for page in &pages {
        assert!(!app.get(page, None).await.text().contains("Lost"));
    }
    assert_eq!(
        app.state.cache.loads(),
        loads,
        "a write that never committed made cached pages reload"
    );
}

#[tokio::test]
async fn a_write_whose_commit_is_unknown_makes_every_cached_page_stale() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |_| {}).await;
    let ada = app.user("ada", Role::Author).await;
    let grace = app.user("grace", Role::Author).await;
    let id = publish(&app, &ada, "Before", &["rust"]).await;
    let elsewhere = publish(&app, &grace, "Elsewhere", &["go"]).await;
    let pages = [
        article_uri(id),
        format!("{ARTICLES}?tag=rust"),
        article_uri(elsewhere),
        format!("{ARTICLES}?tag=go"),
    ];
    for page in &pages {
        assert_eq!(app.get(page, None).await.status, StatusCode::OK);
    }

    // The connection goes as the write commits: nobody can tell whether
    // the database made it, nor what it moved.
    proxy.cut_when_client_sends(b"COMMIT");
    let patch = app
        .patch(
            &article_uri(id),
            json!({"title": "Unknown"}),
            Some(&ada.token),
        )
        .await;
    patch.problem(StatusCode::SERVICE_UNAVAILABLE);
    proxy.restore().await;

    for page in &pages {
        let loads = app.state.cache.loads();
        assert_eq!(app.get(page, None).await.status, StatusCode::OK);
        assert_eq!(
            app.state.cache.loads(),
            loads + 1,
            "{page} was served from before a write that may have committed"
        );
    }
    use sqlx::Connection;
    let stored: String = sqlx::query_scalar("SELECT title FROM articles WHERE id = ?")
        .bind(id)
        .fetch_one(&mut sqlx::MySqlConnection::connect(app.db.url()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(title(&app.get(&article_uri(id), None).await), stored);
}
