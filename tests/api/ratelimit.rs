//! Rate limits: per client address for anonymous reads, sign-ins and
//! sign-ups, per user for writes, per username for sign-ins; forwarding
//! headers believed only from trusted proxies; shared through Redis; and a
//! bounded password-hashing pool.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode};
use feedgate::config::{LimitSettings, RedisMode, Secret, Settings};
use feedgate::domain::Role;
use serde_json::{Value, json};

use crate::support::{
    Backend, RedisCluster, RedisSentinel, SharedRedis, TestApp, TestResponse, json_request,
};

const GENEROUS: LimitSettings = LimitSettings {
    limit: 1000,
    window_secs: 1,
};

/// Every limit generous except those a test sets.
pub(crate) fn generous(settings: &mut Settings) {
    let limits = &mut settings.rate_limit;
    limits.enabled = true;
    limits.read = GENEROUS;
    limits.write = GENEROUS;
    limits.token_client = GENEROUS;
    limits.token_username = GENEROUS;
    limits.token_username_client = GENEROUS;
    limits.signup = GENEROUS;
}

pub(crate) fn per_minute(limit: u32) -> LimitSettings {
    LimitSettings {
        limit,
        window_secs: 60,
    }
}

/// A request as if from `peer` over a socket.
pub(crate) async fn from(
    app: &TestApp,
    peer: &str,
    method: Method,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> TestResponse {
    let mut request = json_request(method, uri, body, token).map(Body::from);
    let peer: SocketAddr = peer.parse().expect("ip:port");
    request.extensions_mut().insert(ConnectInfo(peer));
    app.send(request).await
}

async fn sign_in(app: &TestApp, peer: &str, username: &str) -> TestResponse {
    let body =
        json!({"grant_type": "password", "username": username, "password": "wrong password"});
    from(app, peer, Method::POST, "/api/v1/tokens", Some(body), None).await
}

async fn sign_up(app: &TestApp, peer: &str, username: &str) -> TestResponse {
    let body = json!({"username": username, "password": "long enough pw"});
    from(app, peer, Method::POST, "/api/v1/users", Some(body), None).await
}

fn number(response: &TestResponse, name: &str) -> u64 {
    response
        .header(name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

/// A 429 problem with Retry-After and the RateLimit-* headers.
pub(crate) fn assert_limited(response: &TestResponse, limit: u64) {
    let problem = response.problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    assert!(number(response, "retry-after") >= 1);
    assert_eq!(number(response, "ratelimit-limit"), limit);
    assert_eq!(number(response, "ratelimit-remaining"), 0);
    assert!(number(response, "ratelimit-reset") >= 1);
}

#[tokio::test]
async fn sign_ins_from_one_client_are_limited_with_problem_json_and_headers() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.token_client = per_minute(3);
    })
    .await;
    for remaining in [2, 1, 0] {
        let response = sign_in(&app, "203.0.113.1:5000", "ada").await;
        response.problem(StatusCode::UNAUTHORIZED);
        assert_eq!(number(&response, "ratelimit-limit"), 3);
        assert_eq!(number(&response, "ratelimit-remaining"), remaining);
    }
    let refused = sign_in(&app, "203.0.113.1:5001", "ada").await;
    assert_limited(&refused, 3);
    let retry_after = number(&refused, "retry-after");
    assert!((15..=20).contains(&retry_after), "{retry_after}");

    let elsewhere = sign_in(&app, "203.0.113.2:5000", "ada").await;
    elsewhere.problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_ins_for_one_username_are_limited_whatever_the_client() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.token_username = per_minute(2);
    })
    .await;
    sign_in(&app, "198.51.100.1:1", "ada")
        .await
        .problem(StatusCode::UNAUTHORIZED);
    sign_in(&app, "198.51.100.2:1", "Ada")
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_limited(&sign_in(&app, "198.51.100.3:1", "ADA").await, 2);
    sign_in(&app, "198.51.100.3:1", "bob")
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_ups_in_a_row_from_one_client_are_limited() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.signup = per_minute(3);
    })
    .await;
    for i in 0..3 {
        let response = sign_up(&app, "192.0.2.7:1", &format!("user{i}")).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    }
    assert_limited(&sign_up(&app, "192.0.2.7:2", "user3").await, 3);
    let other = sign_up(&app, "192.0.2.8:1", "user4").await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text());
}

#[tokio::test]
async fn writes_are_limited_per_user_not_per_address() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.write = per_minute(2);
    })
    .await;
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let write = |token: String, peer: &'static str| {
        let body = json!({"title": "T", "body": "Text."});
        let app = &app;
        async move {
            from(
                app,
                peer,
                Method::POST,
                "/api/v1/articles",
                Some(body),
                Some(&token),
            )
            .await
        }
    };
    for peer in ["192.0.2.1:1", "192.0.2.2:1"] {
        let response = write(ada.token.clone(), peer).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    }
    assert_limited(&write(ada.token.clone(), "192.0.2.3:1").await, 2);
    let response = write(bob.token.clone(), "192.0.2.1:1").await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
}

#[tokio::test]
async fn anonymous_reads_are_limited_per_client_but_health_checks_never() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.read = per_minute(5);
    })
    .await;
    let read =
        |peer: &'static str, uri: &'static str| from(&app, peer, Method::GET, uri, None, None);
    for _ in 0..5 {
        assert_eq!(
            read("192.0.2.9:1", "/api/v1/articles").await.status,
            StatusCode::OK
        );
    }
    assert_limited(&read("192.0.2.9:1", "/api/v1/tags").await, 5);
    assert_limited(&read("192.0.2.9:1", "/api/v1/nowhere").await, 5);
    for uri in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            read("192.0.2.9:1", uri).await.status,
            StatusCode::OK,
            "{uri}"
        );
    }
    assert_eq!(
        read("192.0.2.10:1", "/api/v1/articles").await.status,
        StatusCode::OK
    );
    // In-process calls have no address and are not limited.
    for _ in 0..10 {
        assert_eq!(
            app.get("/api/v1/articles", None).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.signup = per_minute(1);
        s.rate_limit.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let via = |peer: &'static str, forwarded_for: &'static str, username: &'static str| {
        let body = json!({"username": username, "password": "long enough pw"});
        let mut request =
            json_request(Method::POST, "/api/v1/users", Some(body), None).map(Body::from);
        request
            .headers_mut()
            .insert("x-forwarded-for", forwarded_for.parse().unwrap());
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        app.send(request)
    };
    // Behind the proxy, each forwarded client has its own limit...
    assert_eq!(
        via("10.0.0.1:1", "198.51.100.1", "one").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        via("10.0.0.2:1", "198.51.100.2", "two").await.status,
        StatusCode::CREATED
    );
    assert_limited(&via("10.0.0.1:1", "198.51.100.1", "three").await, 1);
    // ...and a client cannot pick its own address by adding one in front.
    assert_limited(
        &via("10.0.0.1:1", "192.0.2.1, 198.51.100.1", "four").await,
        1,
    );
    // A client that is no proxy is itself, whatever it forwards.
    assert_eq!(
        via("203.0.113.5:1", "192.0.2.50", "five").await.status,
        StatusCode::CREATED
    );
    assert_limited(&via("203.0.113.5:1", "192.0.2.51", "six").await, 1);
}

#[tokio::test]
async fn with_rate_limiting_off_nothing_is_refused() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.signup = per_minute(1);
        s.rate_limit.enabled = false;
    })
    .await;
    for i in 0..3 {
        let response = sign_up(&app, "192.0.2.7:1", &format!("user{i}")).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        assert!(response.headers.get("ratelimit-limit").is_none());
    }
}

/// Two instances with `redis` set up by `configure`: one client's sign-in
/// budget of two is spent on both together.
async fn two_instances_share_one_budget(configure: impl FnOnce(&mut Settings)) {
    let first = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.token_client = per_minute(2);
        configure(s);
    })
    .await;
    let second = first.sibling(|_| {}).await;
    sign_in(&first, "192.0.2.77:1", "ada")
        .await
        .problem(StatusCode::UNAUTHORIZED);
    sign_in(&second, "192.0.2.77:1", "ada")
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_limited(&sign_in(&first, "192.0.2.77:2", "ada").await, 2);
    assert_limited(&sign_in(&second, "192.0.2.77:2", "ada").await, 2);
}

#[tokio::test]
async fn limits_are_shared_by_instances_through_redis() {
    let redis = SharedRedis::new();
    two_instances_share_one_budget(|s| redis.configure(s)).await;
}

#[tokio::test]
async fn limits_are_shared_by_instances_through_a_redis_cluster() {
    let cluster = RedisCluster::start().await;
    two_instances_share_one_budget(|s| {
        s.redis.url = Secret::new(cluster.urls());
        s.redis.mode = RedisMode::Cluster;
        s.cache.redis_timeout_ms = 1000;
    })
    .await;
}

#[tokio::test]
async fn limits_are_shared_by_instances_through_sentinel() {
    let sentinel = RedisSentinel::start().await;
    two_instances_share_one_budget(|s| {
        s.redis.url = Secret::new(sentinel.url());
        s.redis.mode = RedisMode::Sentinel;
        s.redis.sentinel_master = RedisSentinel::MASTER_NAME.into();
        s.cache.redis_timeout_ms = 1000;
    })
    .await;
}

#[tokio::test]
async fn a_redis_outage_falls_back_to_in_process_limits() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.token_client = per_minute(2);
        // Nothing listens on port 1.
        s.redis.url = Secret::new("redis://127.0.0.1:1");
        s.cache.redis_timeout_ms = 200;
    })
    .await;
    let started = Instant::now();
    for _ in 0..2 {
        sign_in(&app, "192.0.2.88:1", "ada")
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
    assert_limited(&sign_in(&app, "192.0.2.88:1", "ada").await, 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_login_flood_past_the_hashing_pool_gets_a_fast_503_and_reads_go_on() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        s.rate_limit.enabled = false;
        s.auth.hash_concurrency = 1;
        s.auth.hash_queue = 1;
        s.auth.argon2_memory_kib = 19456;
        s.auth.argon2_iterations = 4;
    })
    .await;
    let logins: Vec<_> = (0..12)
        .map(|_| {
            let body = json!({"grant_type": "password", "username": "ada", "password": "nope"});
            app.spawn(
                json_request(Method::POST, "/api/v1/tokens", Some(body), None).map(Body::from),
            )
        })
        .collect();
    let read = app.get("/api/v1/articles", None).await;
    assert_eq!(read.status, StatusCode::OK);
    let mut busy = 0;
    for login in logins {
        let response = login.await.unwrap();
        if response.status == StatusCode::SERVICE_UNAVAILABLE {
            let problem = response.problem(StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(problem["code"], "busy", "{problem}");
            assert_eq!(response.header("retry-after"), "1");
            busy += 1;
        } else {
            response.problem(StatusCode::UNAUTHORIZED);
        }
    }
    assert!(busy >= 8, "only {busy} of 12 were turned away");
}

/// Browser clients on other origins can read when to retry.
#[tokio::test]
async fn a_cross_origin_client_may_read_the_rate_limit_headers() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.read = per_minute(1);
    })
    .await;
    let read = || {
        let mut request = json_request(Method::GET, "/api/v1/tags", None, None).map(Body::from);
        request
            .headers_mut()
            .insert("origin", "https://app.example.com".parse().unwrap());
        request
            .extensions_mut()
            .insert(ConnectInfo("192.0.2.99:1".parse::<SocketAddr>().unwrap()));
        app.send(request)
    };
    assert_eq!(read().await.status, StatusCode::OK);
    let refused = read().await;
    assert_limited(&refused, 1);
    let exposed = refused
        .header("access-control-expose-headers")
        .to_lowercase();
    for name in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        assert!(exposed.contains(name), "{name} is not exposed: {exposed}");
    }
}
