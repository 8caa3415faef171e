//! The test harness: a real router over a real database, one fresh database
//! per test so tests run in parallel.

mod db;
mod logs;
mod proxy;
mod redis;
mod replication;
mod socket;
pub mod tcp;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use feedgate::app::{App, AppState};
use feedgate::config::{Secret, Settings};
use feedgate::domain::{Role, User};
use feedgate::store::ReplicaHealth;
use feedgate::telemetry::RequestLog;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub use self::redis::{
    RedisCluster, RedisSentinel, RedisServer, SharedRedis, shared_url as shared_redis_url,
};
pub use db::{Backend, TestDb, tls_ca, tls_params};
pub use logs::CapturedLogs;
pub use proxy::TcpProxy;
pub use replication::{ReplicaControl, replica_caught_up};
pub use socket::Served;

pub const PASSWORD: &str = "correct horse battery";

/// Runs each named `async fn(TestApp)` once on SQLite and once on MariaDB.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = $crate::support::TestApp::new($crate::support::Backend::Sqlite).await;
                    super::$name(&app).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = $crate::support::TestApp::new($crate::support::Backend::MySql).await;
                    super::$name(&app).await;
                }
            )*
        }
    };
}

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub db: TestDb,
}

/// A user made for a test, with a valid access token.
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub token: String,
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        Self::with_settings(backend, |_| {}).await
    }

    /// Like [`TestApp::new`], with settings adjusted first.
    pub async fn with_settings(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDb::create(backend).await;
        Self::start(db, adjust).await
    }

    /// An instance on a database of the replicated primary that reads from
    /// its replica (checked every 100 ms), with settings adjusted first.
    pub async fn replicated(adjust: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDb::replicated().await;
        // So that the first check finds the database on the replica.
        replica_caught_up(std::time::Duration::from_secs(10)).await;
        let replica = db.replica_url().expect("a replicated database").to_owned();
        Self::start(db, |settings| {
            settings.database.replica_urls = vec![Secret::new(replica)];
            settings.database.replica_check_ms = 100;
            adjust(settings);
        })
        .await
    }

    /// Waits (up to 10 s) until every replica is in rotation.
    pub async fn replicas_in_rotation(&self) {
        self.replicas_become(ReplicaHealth::Ok).await;
    }

    /// Waits (up to 10 s) until every replica is as `health` says.
    pub async fn replicas_become(&self, health: ReplicaHealth) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let statuses = self.state.store.replica_statuses();
            if statuses.iter().all(|status| status.health == health) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "replicas never became {health:?}: {statuses:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The service on a database a test prepared (it migrates it on start).
    pub async fn on_database(db: TestDb) -> Self {
        Self::start(db, |_| {}).await
    }

    async fn start(db: TestDb, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::start_logging_to(db, adjust, RequestLog::default()).await
    }

    /// Like [`TestApp::with_settings`], with request lines going to
    /// `request_log` (e.g. [`CapturedLogs::request_log`]).
    pub async fn logged(
        backend: Backend,
        request_log: RequestLog,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let db = TestDb::create(backend).await;
        Self::start_logging_to(db, adjust, request_log).await
    }

    async fn start_logging_to(
        db: TestDb,
        adjust: impl FnOnce(&mut Settings),
        request_log: RequestLog,
    ) -> Self {
        let mut settings = test_settings(db.url());
        adjust(&mut settings);
        let state = App::start_logging_to(settings, request_log)
            .await
            .expect("the app starts");
        let router = feedgate::http::router(state.clone());
        Self { router, state, db }
    }

    /// A second instance of the service on the same database, with its own
    /// pools and local cache, and this instance's settings adjusted; its
    /// request lines go where this one's do.
    pub async fn sibling(&self, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.state.settings.clone();
        adjust(&mut settings);
        let state = App::start_logging_to(settings, self.state.request_log.clone())
            .await
            .expect("the app starts");
        let router = feedgate::http::router(state.clone());
        Self {
            router,
            state,
            db: self.db.shared(),
        }
    }

    /// Sends a request from a task of its own, to run requests concurrently.
    pub fn spawn(&self, request: Request<Body>) -> tokio::task::JoinHandle<TestResponse> {
        let router = self.router.clone();
        tokio::spawn(async move { respond(router, request).await })
    }

    /// Creates a user directly in the store and signs a token for them, at
    /// their token version, as a sign-in would.
    pub async fn user(&self, username: &str, role: Role) -> TestUser {
        let hash = self
            .state
            .auth
            .passwords
            .hash(PASSWORD)
            .await
            .expect("a hashing slot");
        let user: User = self
            .state
            .store
            .create_user(username, &hash, role)
            .await
            .expect("the user is created")
            .value;
        let principal = self
            .state
            .store
            .find_principal(user.id)
            .await
            .expect("the user is read back")
            .expect("the user exists");
        TestUser {
            id: user.id,
            token: self
                .state
                .auth
                .issue_access_token(&user, principal.token_version),
            username: user.username,
        }
    }

    /// `POST /api/v1/tokens` with the password grant.
    pub async fn sign_in(&self, username: &str, password: &str) -> TestResponse {
        let body = serde_json::json!({
            "grant_type": "password", "username": username, "password": password,
        });
        self.post("/api/v1/tokens", body, None).await
    }

    /// `PATCH /api/v1/users/{id}` to give the user `role`, as `admin`.
    pub async fn set_role(&self, admin: &TestUser, id: i64, role: &str) -> TestResponse {
        let uri = format!("/api/v1/users/{id}");
        let body = serde_json::json!({ "role": role });
        self.patch(&uri, body, Some(&admin.token)).await
    }

    /// Creates an article through the API and returns its JSON.
    pub async fn article(&self, author: &TestUser, body: Value) -> Value {
        let response = self
            .post("/api/v1/articles", body, Some(&author.token))
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        response.json()
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        respond(self.router.clone(), request).await
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> TestResponse {
        self.send(json_request(method, uri, body, token).map(Body::from))
            .await
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> TestResponse {
        self.call(Method::GET, uri, None, token).await
    }

    pub async fn post(&self, uri: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.call(Method::POST, uri, Some(body), token).await
    }

    pub async fn put(&self, uri: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.call(Method::PUT, uri, Some(body), token).await
    }

    pub async fn patch(&self, uri: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.call(Method::PATCH, uri, Some(body), token).await
    }

    pub async fn delete(&self, uri: &str, token: Option<&str>) -> TestResponse {
        self.call(Method::DELETE, uri, None, token).await
    }
}

async fn respond(router: Router, request: Request<Body>) -> TestResponse {
    let response = router
        .oneshot(request)
        .await
        .expect("the router is infallible");
    TestResponse::read(response).await
}

/// A request with an optional JSON body and bearer token.
pub fn json_request(
    method: Method,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> Request<Bytes> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Bytes::new, |json| Bytes::from(json.to_string()));
    request.body(body).expect("a valid request")
}

/// Whether some line of a `/metrics` text holds every one of `needles`.
pub fn has_metric_line(text: &str, needles: &[&str]) -> bool {
    text.lines()
        .any(|line| needles.iter().all(|needle| line.contains(needle)))
}

/// A proxy in front of the MariaDB server the tests use; point an app at it
/// with `s.database.url = Secret::new(proxy.rewrite(s.database.url.expose()))`.
pub async fn mysql_proxy() -> TcpProxy {
    let server = db::mysql_server();
    let authority = server
        .split_once("://")
        .map_or(server.as_str(), |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or(authority);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.contains(':') {
        TcpProxy::start(host_port).await
    } else {
        TcpProxy::start(&format!("{host_port}:3306")).await
    }
}

/// Fast password hashing and a fixed key; everything else as shipped.
fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.database.url = Secret::new(database_url);
    settings.database.max_connections = 4;
    settings.database.write_connections = 2;
    settings.auth.jwt_secret = Secret::new("test-only-key-0123456789abcdef0123456789");
    settings.auth.argon2_memory_kib = 64;
    settings.auth.argon2_iterations = 1;
    settings.check().expect("test settings are valid");
    settings
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    /// Reads a whole response, from the router or from a real socket.
    pub async fn read<B>(response: Response<B>) -> Self
    where
        B: HttpBody,
        B::Error: std::fmt::Debug,
    {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body is readable")
            .to_bytes();
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    /// Asserts a problem+json error with this status and returns its JSON.
    pub fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), "application/problem+json");
        let json = self.json();
        assert_eq!(json["status"], status.as_u16());
        assert!(
            json["title"].is_string() && json["detail"].is_string(),
            "{json}"
        );
        json
    }
}
