//! The shared tier under a Redis as production runs it: a memory cap that
//! evicts, a full Redis that refuses writes, a cluster. Redis holds what is
//! cached, not what was written, and no state of Redis makes an instance
//! serve an older version after a write was acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use feedgate::cache::hooks::BumpHook;
use feedgate::config::{RedisMode, Secret, Settings};
use feedgate::domain::Role;
use serde_json::json;
use sqlx::{Connection, MySqlConnection};
use tokio::sync::Notify;

use super::{ARTICLES, article_uri, eventually, publish, readiness, subscribed, title};
use crate::support::{Backend, RedisCluster, RedisSentinel, RedisServer, TestApp, TestUser};

/// Points an instance at `url` with no local tier worth the name, so every
/// read goes through Redis; one author writes far more than a person would.
fn through_redis(settings: &mut Settings, url: &str) {
    settings.redis.url = Secret::new(url);
    settings.cache.redis_timeout_ms = 1000;
    settings.cache.l1_max_bytes = 0;
    settings.rate_limit.enabled = false;
}

async fn two_instances(url: &str) -> (TestApp, TestApp) {
    let url = url.to_owned();
    let writer = TestApp::with_settings(Backend::MySql, |s| through_redis(s, &url)).await;
    subscribed(&writer).await;
    let reader = writer.sibling(|_| {}).await;
    subscribed(&reader).await;
    (writer, reader)
}

/// Writes `rounds` new titles to each article through `writer`; after every
/// acknowledged write both instances must serve exactly the new title.
/// `between` runs after each round (to squeeze Redis).
async fn every_read_after_a_write_shows_it(
    writer: &TestApp,
    reader: &TestApp,
    author: &TestUser,
    articles: &[i64],
    rounds: usize,
    mut between: impl AsyncFnMut(),
) {
    for round in 1..=rounds {
        for &id in articles {
            let new = format!("Round {round} of {id}");
            let patched = writer
                .patch(&article_uri(id), json!({"title": new}), Some(&author.token))
                .await;
            assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
            for (name, instance) in [("writer", writer), ("reader", reader)] {
                // The other instance hears of the write within milliseconds.
                let seen = eventually(Duration::from_secs(2), async || {
                    title(&instance.get(&article_uri(id), None).await) == new
                })
                .await;
                assert!(
                    seen.is_some(),
                    "the {name} still served an older title than {new:?}"
                );
                assert_eq!(
                    title(&instance.get(&article_uri(id), None).await),
                    new,
                    "the {name} went back to an older title"
                );
            }
        }
        between().await;
    }
}

async fn connection(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis answers")
}

/// Writes `count` keys of `bytes` each that have nothing to do with us.
async fn flood(redis: &RedisServer, round: usize, count: usize, bytes: usize) {
    let mut conn = connection(redis).await;
    let junk = vec![b'x'; bytes];
    for i in 0..count {
        let _: Result<(), _> = redis::cmd("SET")
            .arg(format!("junk:{round}:{i}"))
            .arg(&junk)
            .query_async(&mut conn)
            .await;
    }
}

/// Fills Redis with junk, then lowers its memory cap well below what it
/// holds: with `noeviction` it refuses every write from then on.
async fn fill_up(redis: &RedisServer) {
    flood(redis, 0, 64, 16 * 1024).await;
    let used = info_field(redis, "memory", "used_memory").await;
    let mut conn = connection(redis).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used / 2)
        .query_async(&mut conn)
        .await
        .expect("the cap is lowered");
    let refused: Result<(), _> = redis::cmd("SET")
        .arg("one-more")
        .arg("x")
        .query_async(&mut conn)
        .await;
    assert!(refused.is_err(), "precondition: Redis is full");
}

async fn info_field(redis: &RedisServer, section: &str, field: &str) -> u64 {
    let mut conn = connection(redis).await;
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut conn)
        .await
        .expect("INFO works");
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {info}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_memory_cap_that_evicts_no_instance_goes_back_to_an_older_version() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]).await;
    let (writer, reader) = two_instances(&redis.url()).await;
    let ada = writer.user("ada", Role::Author).await;
    let mut articles = Vec::new();
    for n in 0..6 {
        articles.push(publish(&writer, &ada, &format!("Article {n}"), &["rust"]).await);
    }

    let mut round = 0;
    every_read_after_a_write_shows_it(&writer, &reader, &ada, &articles, 8, async || {
        round += 1;
        flood(&redis, round, 120, 32 * 1024).await;
    })
    .await;

    assert!(
        info_field(&redis, "stats", "evicted_keys").await > 0,
        "precondition: Redis evicted keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generations_lost_from_redis_never_let_an_older_entry_match_again() {
    let redis = RedisServer::start().await;
    let (writer, reader) = two_instances(&redis.url()).await;
    let ada = writer.user("ada", Role::Author).await;
    let mut articles = Vec::new();
    for n in 0..6 {
        articles.push(publish(&writer, &ada, &format!("Article {n}"), &["rust"]).await);
    }

    // As an eviction, an expiry or a restart without them would: every
    // generation and the epoch gone, the entries left.
    every_read_after_a_write_shows_it(&writer, &reader, &ada, &articles, 6, async || {
        let mut conn = connection(&redis).await;
        let mut lost: Vec<String> = redis::cmd("KEYS")
            .arg("feedgate:g:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        lost.push("feedgate:epoch".into());
        let _: () = redis::cmd("DEL")
            .arg(&lost)
            .query_async(&mut conn)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_that_refuses_writes_never_leaves_an_older_version_served() {
    let redis = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]).await;
    let (writer, reader) = two_instances(&redis.url()).await;
    let ada = writer.user("ada", Role::Author).await;
    let mut articles = Vec::new();
    for n in 0..6 {
        let id = publish(&writer, &ada, &format!("Article {n}"), &[]).await;
        // Shared entries and generations exist before Redis fills up.
        title(&reader.get(&article_uri(id), None).await);
        articles.push(id);
    }

    fill_up(&redis).await;

    every_read_after_a_write_shows_it(&writer, &reader, &ada, &articles, 3, async || {}).await;

    let health = readiness(&writer).await;
    assert_eq!(health["status"], "degraded", "{health}");
    let redis_check = health["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == "redis"))
        .map(|c| c["status"].clone());
    assert_eq!(redis_check, Some(json!("full")), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_one_entry_per_cached_response_however_many_writes() {
    let redis = RedisServer::start().await;
    let (writer, reader) = two_instances(&redis.url()).await;
    let ada = writer.user("ada", Role::Author).await;
    let mut articles = Vec::new();
    for n in 0..4 {
        articles.push(publish(&writer, &ada, &format!("Article {n}"), &["rust", "web"]).await);
    }
    let mut urls: Vec<String> = articles.iter().map(|id| article_uri(*id)).collect();
    for query in [
        "",
        "?tag=rust",
        "?tag=web",
        "?author=ada",
        "?sort=title",
        "?sort=-updated_at",
        "?per_page=2",
        "?q=article",
    ] {
        urls.push(format!("{ARTICLES}{query}"));
    }
    urls.extend([
        "/api/v1/tags".to_owned(),
        format!("{}/comments", article_uri(articles[0])),
        format!("/api/v1/users/{}", ada.id),
        format!("{ARTICLES}?tag=rust&sort=title"),
    ]);
    assert_eq!(urls.len(), 16);

    let read_all = async || {
        for url in &urls {
            for instance in [&writer, &reader] {
                let response = instance.get(url, None).await;
                assert_eq!(response.status, StatusCode::OK, "{url}");
            }
        }
    };
    read_all().await;
    let mut conn = connection(&redis).await;
    let size_before: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();

    for n in 0..200 {
        let id = articles[n % articles.len()];
        let patched = writer
            .patch(
                &article_uri(id),
                json!({"title": format!("Write {n}")}),
                Some(&ada.token),
            )
            .await;
        assert_eq!(patched.status, StatusCode::OK);
        read_all().await;
    }

    let size_after: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    let entries: Vec<String> = redis::cmd("KEYS")
        .arg("feedgate:e:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    // And one for ada's record, which authorizes her writes.
    assert_eq!(
        entries.len(),
        urls.len() + 1,
        "one entry per cached response: {entries:?}"
    );
    assert!(
        size_after <= size_before + 2,
        "Redis grew from {size_before} to {size_after} keys over 200 writes"
    );
}

/// Two instances on `url` in `mode`, once both are subscribed.
async fn two_instances_in(mode: RedisMode, url: &str) -> (TestApp, TestApp) {
    let writer = TestApp::with_settings(Backend::MySql, |s| {
        s.redis.url = Secret::new(url);
        s.redis.mode = mode;
        s.redis.sentinel_master = RedisSentinel::MASTER_NAME.into();
        s.cache.redis_timeout_ms = 1000;
        s.rate_limit.enabled = false;
    })
    .await;
    subscribed(&writer).await;
    let reader = writer.sibling(|_| {}).await;
    subscribed(&reader).await;
    (writer, reader)
}

/// The second instance finds in Redis what the first loaded.
async fn shared_entries_are_read_without_loading(
    writer: &TestApp,
    reader: &TestApp,
    articles: &[i64],
) {
    for &id in articles {
        title(&writer.get(&article_uri(id), None).await);
    }
    let loads = reader.state.cache.loads();
    for &id in articles {
        title(&reader.get(&article_uri(id), None).await);
    }
    assert_eq!(
        reader.state.cache.loads(),
        loads,
        "the second instance read every article from Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_sentinel_instances_share_entries_and_hear_each_others_writes() {
    let sentinel = RedisSentinel::start().await;
    let (writer, reader) = two_instances_in(RedisMode::Sentinel, &sentinel.url()).await;
    let ada = writer.user("ada", Role::Author).await;
    let mut articles = Vec::new();
    for n in 0..4 {
        articles.push(publish(&writer, &ada, &format!("Article {n}"), &[]).await);
    }
    shared_entries_are_read_without_loading(&writer, &reader, &articles).await;
    let mut conn = connection(sentinel.master()).await;
    let entries: Vec<String> = redis::cmd("KEYS")
        .arg("feedgate:e:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!entries.is_empty(), "the entries are on the master");

    every_read_after_a_write_shows_it(&writer, &reader, &ada, &articles, 2, async || {}).await;
    assert_eq!(readiness(&writer).await["status"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_instances_share_entries_and_hear_each_others_writes() {
    let cluster = RedisCluster::start().await;
    let (writer, reader) = two_instances_in(RedisMode::Cluster, &cluster.urls()).await;
    let ada = writer.user("ada", Role::Author).await;
    let mut articles = Vec::new();
    for n in 0..12 {
        articles.push(publish(&writer, &ada, &format!("Article {n}"), &["rust"]).await);
    }
    shared_entries_are_read_without_loading(&writer, &reader, &articles).await;

    let mut holding = 0;
    for node in cluster.nodes() {
        let mut conn = connection(node).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("feedgate:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        holding += usize::from(!keys.is_empty());
    }
    assert!(
        holding >= 2,
        "keys spread over the nodes ({holding} hold some)"
    );

    every_read_after_a_write_shows_it(&writer, &reader, &ada, &articles[..4], 2, async || {}).await;
    assert_eq!(readiness(&writer).await["status"], "ready");
}

/// The writing instance's own reads between its local bump and Redis' bump
/// of a committed write: one that fetches, from Redis, a copy filled from
/// the row before its commit must not be
/// kept past the write's answer. (On a Redis Cluster the window is as long
/// as a bump's round trip to another node, or a script reloaded there.)
#[tokio::test]
async fn on_a_cluster_the_writer_never_keeps_a_copy_fetched_between_its_local_and_redis_bumps() {
    let cluster = RedisCluster::start().await;
    let (writer, other) = two_instances_in(RedisMode::Cluster, &cluster.urls()).await;
    let ada = writer.user("ada", Role::Author).await;
    let id = publish(&writer, &ada, "Old", &[]).await;
    let uri = article_uri(id);

    // Hold the write before its commit: the row is locked by another
    // transaction.
    let mut lock = MySqlConnection::connect(writer.db.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("SELECT id FROM articles WHERE id = ? FOR UPDATE")
        .bind(id)
        .execute(&mut lock)
        .await
        .unwrap();
    let request = crate::support::json_request(
        Method::PATCH,
        &uri,
        Some(json!({"title": "New"})),
        Some(&ada.token),
    )
    .map(Body::from);
    let reached = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let hook: BumpHook = {
        let (reached, release) = (reached.clone(), release.clone());
        let armed = Arc::new(AtomicBool::new(true));
        Arc::new(move |_| {
            let hold = armed.swap(false, Ordering::SeqCst);
            let (reached, release) = (reached.clone(), release.clone());
            Box::pin(async move {
                if hold {
                    reached.notify_one();
                    release.notified().await;
                }
            })
        })
    };
    writer.state.cache.hooks.set_bump(Some(hook));
    // The write runs in this task, beside the steps below, so that nothing
    // else runs between its answer and the read that follows it.
    let write = tower::ServiceExt::oneshot(writer.router.clone(), request);
    let steps = async {
        let waiting = eventually(Duration::from_secs(10), async || {
            let waits: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'UPDATE articles SET%'",
            )
            .fetch_one(&mut lock)
            .await
            .unwrap();
            waits > 0
        })
        .await;
        assert!(waiting.is_some(), "the write never reached its update");
        // Another instance fills Redis from the row as it was.
        assert_eq!(title(&other.get(&uri, None).await), "Old");
        // The write commits, and is held again between its local and its
        // Redis bump; the writer's own read then may still see the old
        // copy...
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
        reached.notified().await;
        let early = writer.get(&uri, None).await;
        assert_eq!(early.status, StatusCode::OK);
        release.notify_one();
    };
    let (written, ()) = tokio::join!(write, steps);
    // ...but never once the write has answered.
    let after = writer.get(&uri, None).await;
    assert_eq!(written.unwrap().status(), StatusCode::OK);
    assert_eq!(
        title(&after),
        "New",
        "the writing instance kept a copy from before its own write"
    );
    writer.state.cache.hooks.set_bump(None);
}

/// A master of a cluster without replicas stops: the whole cluster then
/// refuses every keyed command (`cluster_state:fail`). Writes still answer
/// promptly, the other instance hears of them within the invalidation
/// bound, the writer never shows what it replaced, readiness says Redis is
/// down; once the master is back (with its old data), both instances are
/// ready and coherent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cluster_master_down_writes_still_reach_every_instance_at_once() {
    let mut cluster = RedisCluster::start().await;
    let (writer, reader) = two_instances_in(RedisMode::Cluster, &cluster.urls()).await;
    let ada = writer.user("ada", Role::Author).await;
    let mut articles = Vec::new();
    for n in 0..4 {
        articles.push(publish(&writer, &ada, &format!("Article {n}"), &["rust"]).await);
    }
    for instance in [&writer, &reader] {
        for &id in &articles {
            assert_eq!(
                instance.get(&article_uri(id), None).await.status,
                StatusCode::OK
            );
        }
    }

    cluster.stop(2).await;
    let noticed = eventually(Duration::from_secs(20), async || {
        readiness(&writer).await["checks"][1]["status"] == "down"
    })
    .await;
    assert!(
        noticed.is_some(),
        "readiness never said the cluster was down"
    );
    assert_eq!(readiness(&writer).await["status"], "degraded");

    for (n, &id) in articles.iter().enumerate() {
        let title_now = format!("During the outage {n}");
        let started = std::time::Instant::now();
        let patched = writer
            .patch(
                &article_uri(id),
                json!({"title": title_now}),
                Some(&ada.token),
            )
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        let took = started.elapsed();
        assert!(took < Duration::from_millis(800), "a write took {took:?}");
        assert_eq!(title(&writer.get(&article_uri(id), None).await), title_now);
        let heard = eventually(Duration::from_secs(2), async || {
            title(&reader.get(&article_uri(id), None).await) == title_now
        })
        .await;
        assert!(heard.is_some(), "the other instance kept the old {id}");
    }

    cluster.restart(2).await;
    let back = eventually(Duration::from_secs(20), async || {
        readiness(&writer).await["status"] == "ready"
    })
    .await;
    assert!(back.is_some(), "readiness never came back");
    every_read_after_a_write_shows_it(&writer, &reader, &ada, &articles, 1, async || {}).await;
}
