//! TLS to MariaDB and to Redis, against servers that take nothing else
//! (`scripts/services.sh`: a MariaDB with `require_secure_transport`, a
//! replica that accepts TLS, a Redis on a `--tls-port`), with certificates
//! from a private CA.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use feedgate::cache::RedisHealth;
use feedgate::config::Secret;
use feedgate::domain::Role;
use feedgate::store::{ReadTarget, ReplicaHealth};
use serde_json::json;

use crate::support::{
    ReplicaControl, SharedRedis, TestApp, TestDb, replica_caught_up, tls_ca, tls_params,
};

async fn publish(app: &TestApp, title: &str) -> i64 {
    let ada = app.user("ada", Role::Author).await;
    let created = app
        .article(
            &ada,
            json!({"title": title, "body": "Body.", "status": "published"}),
        )
        .await;
    created["id"].as_i64().expect("an id")
}

/// Waits until `check` holds, for at most 10 s.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn the_service_writes_and_reads_through_a_database_that_requires_tls() {
    let db = TestDb::secure().await;
    assert!(
        db.url().contains("ssl-mode=VERIFY_CA&ssl-ca="),
        "{}",
        db.url()
    );
    let app = TestApp::on_database(db).await;

    let id = publish(&app, "Over TLS").await;
    let read = app.get(&format!("/api/v1/articles/{id}"), None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.json()["title"], "Over TLS");
}

#[tokio::test]
async fn a_database_that_requires_tls_refuses_a_connection_without_it() {
    let db = TestDb::secure().await;
    let base = db.url().split_once('?').expect("parameters").0;
    let plain = format!("{base}?ssl-mode=DISABLED");
    let mut settings = feedgate::config::Settings::defaults();
    settings.database.url = Secret::new(plain);
    settings.database.acquire_timeout_ms = 2000;
    let refused = feedgate::store::Store::connect(&settings.database).await;
    assert!(refused.is_err(), "a connection without TLS was accepted");
}

#[tokio::test]
async fn replica_urls_take_the_same_tls_parameters_and_verify_the_replica() {
    let _replica = ReplicaControl::undisturbed().await;
    let app = TestApp::replicated(|s| {
        let url = format!("{}?{}", s.database.replica_urls[0].expose(), tls_params());
        s.database.replica_urls = vec![Secret::new(url)];
    })
    .await;
    app.replicas_in_rotation().await;
    let id = publish(&app, "Replicated over TLS").await;
    assert!(replica_caught_up(Duration::from_secs(10)).await);
    let reads = app.state.store.replica_reads(None).await;
    assert_eq!(reads.target(), ReadTarget::Replica);
    let found = reads.find_article(id).await.unwrap().expect("replicated");
    assert_eq!(found.title, "Replicated over TLS");

    // The server's own certificate is no CA: with it, verification fails
    // and the replica never comes into rotation.
    let server_cert = tls_ca().replace("ca.pem", "server-cert.pem");
    let wrong = app
        .sibling(|s| {
            let url = s.database.replica_urls[0]
                .expose()
                .replace(&tls_ca(), &server_cert);
            s.database.replica_urls = vec![Secret::new(url)];
        })
        .await;
    wrong.replicas_become(ReplicaHealth::Down).await;
    let reads = wrong.state.store.replica_reads(None).await;
    assert_eq!(reads.target(), ReadTarget::PrimaryFallback);
    assert!(reads.find_article(id).await.unwrap().is_some());
}

#[tokio::test]
async fn the_shared_tier_invalidations_and_rate_limits_run_over_redis_tls_with_a_private_ca() {
    let redis = SharedRedis::over_tls();
    let a = TestApp::with_settings(crate::support::Backend::MySql, |s| redis.configure(s)).await;
    let b = a.sibling(|_| {}).await;
    for app in [&a, &b] {
        assert!(
            eventually(async || app.state.cache.is_subscribed()).await,
            "the invalidation channel never came up over TLS"
        );
        assert_eq!(app.state.cache.redis_health().await, Some(RedisHealth::Ok));
    }
    let id = publish(&a, "First").await;
    let uri = format!("/api/v1/articles/{id}");
    assert_eq!(b.get(&uri, None).await.json()["title"], "First");

    let ada_token = a.sign_in("ada", crate::support::PASSWORD).await.json()["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let patched = a
        .patch(&uri, json!({"title": "Second"}), Some(&ada_token))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    assert!(
        eventually(async || b.get(&uri, None).await.json()["title"] == "Second").await,
        "the other instance never heard the write over TLS"
    );

    // The sign-in above and the write were counted in Redis, over TLS.
    let mut conn = redis.client().get_connection().expect("TLS to Redis");
    let buckets: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:rl:*", redis.prefix()))
        .query(&mut conn)
        .expect("KEYS");
    assert!(!buckets.is_empty(), "no shared rate-limit bucket");
}

#[tokio::test]
async fn without_the_ca_redis_over_tls_is_down_and_reads_still_answer() {
    let redis = SharedRedis::over_tls();
    let app = TestApp::with_settings(crate::support::Backend::MySql, |s| {
        redis.configure(s);
        s.redis.ca_file = String::new();
    })
    .await;
    let id = publish(&app, "Untrusted").await;
    let read = app.get(&format!("/api/v1/articles/{id}"), None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(
        app.state.cache.redis_health().await,
        Some(RedisHealth::Down)
    );
}
