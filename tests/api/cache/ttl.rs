//! Time to live: an entry past `ttl_secs` shows a change made behind the
//! cache, in the local tier and with Redis.

use std::time::Duration;

use feedgate::domain::{ArticleContent, ArticleStatus, Role};

use super::{article_uri, publish, subscribed, title};
use crate::support::{Backend, SharedRedis, TestApp};

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
