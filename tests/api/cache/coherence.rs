//! Readers, writers and instances: a read that raced a write is never
//! served after it, a stale fill is never shared, the shared tier spares a
//! second instance the load, heartbeats keep the local tier, and a write on
//! one instance reaches the others within two seconds.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use feedgate::cache::Key;
use feedgate::config::Secret;
use feedgate::domain::Role;
use serde_json::json;

use super::{
    ARTICLES, article_uri, eventually, get_request, pause_first_fill, publish, redis_app,
    redis_sibling, subscribed, tag_counts, title, titles,
};
use crate::on_both_backends;
use crate::support::{Backend, RedisServer, Served, SharedRedis, TestApp};

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

/// How many PINGs the server has answered.
async fn pings(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO works");
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_ping:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().expect("a count of calls"))
}

/// The invalidation channel's heartbeat must not drop the subscription (a
/// reconnect bumps the epoch and empties the local tier).
#[tokio::test]
async fn a_subscribed_instance_keeps_its_local_entries_across_heartbeats() {
    // A Redis of the test's own, so that every PING it answers is a
    // heartbeat of this instance's.
    let redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::with_settings(Backend::MySql, |s| {
        s.redis.url = Secret::new(&url);
        s.cache.redis_timeout_ms = 1000;
    })
    .await;
    subscribed(&app).await;
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(publish(&app, &ada, "Steady", &[]).await);
    assert_eq!(title(&app.get(&uri, None).await), "Steady");
    let loads = app.state.cache.loads();

    // Heartbeats run every 500 ms: wait for three.
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis answers");
    let before = pings(&mut conn).await;
    let beats = eventually(Duration::from_secs(10), async || {
        pings(&mut conn).await >= before + 3
    })
    .await;
    assert!(beats.is_some(), "fewer than three heartbeats in 10 s");
    assert!(app.state.cache.is_subscribed());
    assert_eq!(title(&app.get(&uri, None).await), "Steady");
    assert_eq!(
        app.state.cache.loads(),
        loads,
        "the local entry was dropped while nothing was written"
    );
}

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

on_both_backends!(a_read_that_raced_a_write_is_never_served_after_the_write,);

with_redis!(a_read_that_raced_a_write_is_never_served_after_the_write,);
