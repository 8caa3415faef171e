//! Redis going away: reads and writes go on without errors, readiness says
//! so, and nothing stale is served once Redis is back.

use std::time::Duration;

use axum::http::StatusCode;
use feedgate::config::Secret;
use feedgate::domain::Role;
use serde_json::{Value, json};

use super::{ARTICLES, article_uri, eventually, publish, readiness, subscribed, title, titles};
use crate::support::{Backend, RedisServer, TestApp};

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
