//! Measures the cross-instance staleness bound: two feedgate instances share
//! MariaDB and Redis; a write goes through A, and B is polled until it serves
//! the new state. Prints the delay distribution.
//!
//!   cargo run --release --example staleness -- [ROUNDS]
//!
//! Needs MariaDB (`FEEDGATE_BENCH_MYSQL_URL`, default root on 127.0.0.1) and
//! Redis (`FEEDGATE_BENCH_REDIS_URL`, default 127.0.0.1:6379); it creates and
//! drops its own database and uses its own key prefix.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use feedgate::app::App;
use feedgate::config::{Secret, Settings};
use feedgate::domain::Role;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::{Connection, MySqlConnection};
use tower::ServiceExt;

const DEADLINE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let server = std::env::var("FEEDGATE_BENCH_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let redis = std::env::var("FEEDGATE_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let suffix = format!("{:x}", rand::random::<u32>());
    let database = format!("feedgate_bench_{suffix}");
    let mut admin = MySqlConnection::connect(&server).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await?;

    let result = run(rounds, &format!("{server}/{database}"), &redis, &suffix).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {database}")))
        .execute(&mut admin)
        .await?;
    result
}

async fn run(
    rounds: usize,
    database_url: &str,
    redis_url: &str,
    suffix: &str,
) -> anyhow::Result<()> {
    let settings = {
        let mut s = Settings::defaults();
        s.database.url = Secret::new(database_url);
        s.redis.url = Secret::new(redis_url);
        s.cache.redis_prefix = format!("feedgate-bench-{suffix}");
        s.auth.jwt_secret = Secret::new("bench-only-key-0123456789abcdef0123456789");
        // One writer PATCHes hundreds of times a second on purpose.
        s.rate_limit.enabled = false;
        s
    };
    let a = App::start(settings.clone()).await?;
    let b = App::start(settings).await?;
    while !(a.cache.is_subscribed() && b.cache.is_subscribed()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (router_a, router_b) = (
        feedgate::http::router(a.clone()),
        feedgate::http::router(b.clone()),
    );

    let hash = a.auth.passwords.hash("bench password").await?;
    let user = a
        .store
        .create_user("bench", &hash, Role::Author)
        .await?
        .value;
    let version = a
        .store
        .find_principal(user.id)
        .await?
        .map(|p| p.token_version);
    let token = a
        .auth
        .issue_access_token(&user, version.unwrap_or_default());
    let (status, created) = call(
        &router_a,
        Method::POST,
        "/api/v1/articles",
        Some(json!({"title": "v0", "body": "b", "status": "published"})),
        Some(&token),
    )
    .await;
    anyhow::ensure!(status == StatusCode::CREATED, "create failed: {created}");
    let uri = format!("/api/v1/articles/{}", created["id"]);

    let mut delays = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        // Warm B's caches with the current state.
        call(&router_b, Method::GET, &uri, None, None).await;
        let title = format!("v{round}");
        let (status, _) = call(
            &router_a,
            Method::PATCH,
            &uri,
            Some(json!({"title": title})),
            Some(&token),
        )
        .await;
        anyhow::ensure!(status == StatusCode::OK, "write failed");
        let written = Instant::now();
        loop {
            let (_, seen) = call(&router_b, Method::GET, &uri, None, None).await;
            if seen["title"] == title.as_str() {
                delays.push(written.elapsed());
                break;
            }
            anyhow::ensure!(
                written.elapsed() < DEADLINE,
                "B still stale after {DEADLINE:?}"
            );
            tokio::task::yield_now().await;
        }
    }
    delays.sort();
    let at =
        |q: f64| delays[((delays.len() as f64 * q).ceil() as usize).clamp(1, delays.len()) - 1];
    println!("rounds: {rounds}");
    println!(
        "staleness after a write on another instance: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        at(0.50),
        at(0.90),
        at(0.99),
        delays[delays.len() - 1]
    );
    Ok(())
}

async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Body::empty, |json| Body::from(json.to_string()));
    let response = router
        .clone()
        .oneshot(request.body(body).expect("a valid request"))
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
