//! Hits and negative caching: repeated reads and revalidations do not reach
//! the store, a missing article is looked up once, and the metrics count
//! hits, misses and fills.

use axum::http::StatusCode;
use feedgate::domain::Role;

use super::{ARTICLES, article_uri, get_with, metric, metrics_text, publish, title};
use crate::on_both_backends;
use crate::support::TestApp;

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
    metrics_count_hits_misses_and_fills_by_tier_and_route,
);

with_redis!(
    repeated_reads_and_revalidations_do_not_reach_the_store,
    a_missing_article_is_looked_up_once_and_found_as_soon_as_it_is_created,
);
