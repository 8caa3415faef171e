//! The request log as operators read it: one line per request with its
//! route template, status, latency, tier and id, in JSON and in pretty
//! form; written by a thread of its own that never holds a request up and
//! drops (and counts) what it cannot keep up with; error lines carry the
//! request they belong to; credentials never appear.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::routing::get;
use chrono::{DateTime, Utc};
use feedgate::config::LogFormat;
use feedgate::domain::Role;
use feedgate::http::RequestLogLayer;
use feedgate::telemetry::{RequestLog, Style};
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection};
use tower::ServiceExt;

use crate::cache::subscribed;
use crate::support::{Backend, CapturedLogs, SharedRedis, TestApp, TestResponse};

/// The lines of the request with this id whose `key` is `value`.
fn lines_of(logs: &CapturedLogs, id: &str, key: &str, value: &str) -> Vec<Value> {
    let lines = logs.for_request(id).into_iter();
    lines.filter(|line| line[key] == value).collect()
}

/// The one request line of the request with this id.
fn request_line(logs: &CapturedLogs, id: &str) -> Value {
    let lines = lines_of(logs, id, "target", "feedgate::request");
    assert_eq!(
        lines.len(),
        1,
        "one request line for {id} in:\n{}",
        logs.text()
    );
    lines.into_iter().next().unwrap_or_default()
}

async fn get_with(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> TestResponse {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.send(request.body(Body::empty()).unwrap()).await
}

/// An RFC 3339 UTC timestamp to the microsecond, within a second of the
/// span from `earliest` to now.
fn assert_timestamp(text: &str, earliest: SystemTime) {
    assert!(
        text.len() == 27 && text.ends_with('Z') && text.as_bytes()[19] == b'.',
        "{text}"
    );
    let at: SystemTime = DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|err| panic!("{err}: {text}"))
        .with_timezone(&Utc)
        .into();
    let slack = Duration::from_secs(1);
    assert!(
        at + slack >= earliest && at <= SystemTime::now() + slack,
        "{text}"
    );
}

#[tokio::test]
async fn each_request_is_logged_once_by_route_template_with_status_latency_and_id() {
    let (logs, _guard) = CapturedLogs::start("info");
    let app = TestApp::logged(Backend::Sqlite, logs.request_log(), |_| {}).await;

    let (earliest, started) = (SystemTime::now(), Instant::now());
    let response = get_with(&app, "/api/v1/articles/424242", &[]).await;
    let took = started.elapsed();
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let id = response.header("x-request-id");
    let line = request_line(&logs, id);
    assert_timestamp(line["timestamp"].as_str().unwrap_or_default(), earliest);
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["message"], "response", "{line}");
    assert_eq!(line["span"]["name"], "request", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["span"]["route"], "/api/v1/articles/{id}", "{line}");
    assert_eq!(line["status"], 404, "{line}");
    let latency = line["latency_us"].as_u64().unwrap_or_default();
    assert!(
        latency > 0 && u128::from(latency) <= took.as_micros(),
        "{latency} µs logged for a request that took {took:?}: {line}"
    );
    assert_eq!(line["tier"], "db", "a missing article is looked up: {line}");
    assert!(!logs.text().contains("424242"), "raw paths are not logged");

    let response = get_with(&app, "/no/such/place", &[]).await;
    let line = request_line(&logs, response.header("x-request-id"));
    assert_eq!(line["span"]["route"], "unmatched", "{line}");
    assert_eq!(line["status"], 404, "{line}");
    assert!(!logs.text().contains("/no/such/place"));

    let response = app.post("/api/v1/articles", json!({}), None).await;
    let line = request_line(&logs, response.header("x-request-id"));
    assert_eq!(line["span"]["method"], "POST", "{line}");
    assert_eq!(line["status"], 401, "{line}");
}

#[tokio::test]
async fn pretty_lines_hold_the_same_fields_in_a_compact_line() {
    let (logs, _guard) = CapturedLogs::start_as(LogFormat::Pretty, "info");
    let app = TestApp::logged(Backend::Sqlite, logs.request_log(), |_| {}).await;

    let (earliest, started) = (SystemTime::now(), Instant::now());
    let response = get_with(&app, "/api/v1/articles/424242", &[]).await;
    let took = started.elapsed();
    let id = response.header("x-request-id").to_owned();
    let healthz = get_with(&app, "/healthz", &[("x-request-id", "pretty-2")]).await;
    assert_eq!(healthz.status, StatusCode::OK);

    let text = logs.text();
    let fields_of = |id: &str| -> Vec<String> {
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(" feedgate::request: ") && line.ends_with(id))
            .collect();
        assert_eq!(lines.len(), 1, "one request line for {id} in:\n{text}");
        lines[0].split_whitespace().map(str::to_owned).collect()
    };
    let fields = fields_of(&id);
    assert_eq!(fields.len(), 9, "{fields:?}");
    assert_timestamp(&fields[0], earliest);
    assert_eq!(
        fields[1..6],
        [
            "INFO",
            "feedgate::request:",
            "GET",
            "/api/v1/articles/{id}",
            "404"
        ],
        "{fields:?}"
    );
    let latency: u128 = fields[6]
        .strip_suffix("us")
        .and_then(|us| us.parse().ok())
        .unwrap_or_else(|| panic!("a latency in µs: {fields:?}"));
    assert!(latency > 0 && latency <= took.as_micros(), "{fields:?}");
    assert_eq!(fields[7..], ["db".to_owned(), id.clone()], "{fields:?}");
    let healthz = fields_of("pretty-2");
    assert_eq!(healthz[3..6], ["GET", "/healthz", "200"], "{healthz:?}");
    assert_eq!(healthz[7..], ["-", "pretty-2"], "no tier behind /healthz");
    assert!(!text.contains("424242"), "raw paths are not logged");
}

#[tokio::test]
async fn a_client_chosen_request_id_is_the_one_logged() {
    let (logs, _guard) = CapturedLogs::start("info");
    let app = TestApp::logged(Backend::Sqlite, logs.request_log(), |_| {}).await;
    let response = get_with(&app, "/healthz", &[("x-request-id", "client-id-7")]).await;
    assert_eq!(response.header("x-request-id"), "client-id-7");
    let line = request_line(&logs, "client-id-7");
    assert_eq!(line["span"]["route"], "/healthz", "{line}");
    assert_eq!(line["status"], 200, "{line}");
}

/// A request id no client may keep (the service replaces it), as it could
/// still reach the log behind a layer that does not check ids.
const HOSTILE_ID: &[u8] = b"x\"}\\,\"level\":\"ERROR\t\xff";

#[tokio::test]
async fn a_request_id_with_quotes_backslashes_or_control_characters_cannot_break_a_line() {
    let (logs, _guard) = CapturedLogs::start("info");
    let app = TestApp::logged(Backend::Sqlite, logs.request_log(), |_| {}).await;
    let hostile = HeaderValue::from_bytes(HOSTILE_ID).unwrap();
    let request = Request::get("/healthz")
        .header("x-request-id", hostile.clone())
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    let id = response.header("x-request-id");
    assert_eq!(id.len(), 36, "the service gives it a fresh id: {id}");
    assert_eq!(request_line(&logs, id)["status"], 200);

    // Without the service's check in front, the line escapes the id.
    let bare = Router::new()
        .route("/bare", get(|| async { "ok" }))
        .layer(RequestLogLayer::new(logs.request_log()));
    let request = Request::get("/bare")
        .header("x-request-id", hostile)
        .body(Body::empty())
        .unwrap();
    let response = bare.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Every line parses as one JSON object (`lines` panics otherwise).
    let lines = logs.lines();
    let logged: Vec<&Value> = lines
        .iter()
        .filter(|line| line["span"]["route"] == "/bare")
        .collect();
    assert_eq!(logged.len(), 1, "{}", logs.text());
    assert_eq!(
        logged[0]["span"]["request_id"], "x\"}\\,\"level\":\"ERROR\t\u{fffd}",
        "{}",
        logged[0]
    );
    assert_eq!(logged[0]["level"], "INFO", "{}", logged[0]);
}

#[tokio::test]
async fn authorization_headers_and_cookies_are_never_logged() {
    let (logs, _guard) = CapturedLogs::start("trace");
    let app = TestApp::logged(Backend::Sqlite, logs.request_log(), |_| {}).await;
    let response = get_with(
        &app,
        "/api/v1/users/me",
        &[
            ("authorization", "Bearer secret-token-value-1234"),
            ("cookie", "session=secret-cookie-value-5678"),
        ],
    )
    .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    request_line(&logs, response.header("x-request-id"));
    let text = logs.text();
    assert!(!text.contains("secret-token-value"), "{text}");
    assert!(!text.contains("secret-cookie-value"), "{text}");
}

/// Breaks the schema under the app so that a read fails inside the store.
async fn drop_table(app: &TestApp, table: &str) {
    let mut conn = SqliteConnection::connect(app.db.url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&mut conn)
        .await
        .expect("the table is dropped");
}

#[tokio::test]
async fn internal_errors_are_logged_with_the_request_id_method_and_route() {
    let (logs, _guard) = CapturedLogs::start("info");
    let app = TestApp::logged(Backend::Sqlite, logs.request_log(), |_| {}).await;
    drop_table(&app, "feed_counts").await;

    let response = get_with(&app, "/api/v1/tags", &[]).await;
    response.problem(StatusCode::INTERNAL_SERVER_ERROR);
    let id = response.header("x-request-id");
    let errors = lines_of(&logs, id, "level", "ERROR");
    assert!(
        !errors.is_empty(),
        "no error line for {id} in:\n{}",
        logs.text()
    );
    for line in &errors {
        assert_eq!(line["span"]["method"], "GET", "{line}");
        assert_eq!(line["span"]["route"], "/api/v1/tags", "{line}");
        assert_eq!(line["target"], "feedgate::error", "{line}");
    }
    assert_eq!(request_line(&logs, id)["status"], 500);
}

#[tokio::test]
async fn pretty_error_lines_name_their_request() {
    let (logs, _guard) = CapturedLogs::start_as(LogFormat::Pretty, "info");
    let app = TestApp::logged(Backend::Sqlite, logs.request_log(), |_| {}).await;
    drop_table(&app, "feed_counts").await;

    let response = get_with(&app, "/api/v1/tags", &[("x-request-id", "pretty-error-1")]).await;
    response.problem(StatusCode::INTERNAL_SERVER_ERROR);
    let text = logs.text();
    let error = text
        .lines()
        .find(|line| line.contains(" ERROR "))
        .unwrap_or_else(|| panic!("no error line in:\n{text}"));
    assert!(
        error.contains(
            " ERROR request{request_id=pretty-error-1 method=GET route=/api/v1/tags}: \
             feedgate::error: internal error"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn request_lines_can_be_filtered_out_leaving_error_lines_with_their_request() {
    let (logs, _guard) = CapturedLogs::start("info,feedgate::request=warn");
    let app = TestApp::logged(Backend::Sqlite, logs.request_log(), |_| {}).await;
    drop_table(&app, "feed_counts").await;

    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let failed = app.get("/api/v1/tags", None).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    let lines = logs.lines();
    assert!(
        lines
            .iter()
            .all(|line| line["target"] != "feedgate::request"),
        "request lines are filtered out:\n{}",
        logs.text()
    );
    let errors = lines_of(&logs, failed.header("x-request-id"), "level", "ERROR");
    assert!(
        !errors.is_empty(),
        "the error is still logged, with its request id:\n{}",
        logs.text()
    );
}

#[tokio::test]
async fn each_request_line_names_the_tier_that_answered() {
    let (logs, _guard) = CapturedLogs::start("info");
    let redis = SharedRedis::new();
    let a = TestApp::logged(Backend::Sqlite, logs.request_log(), |s| redis.configure(s)).await;
    let b = a.sibling(|_| {}).await;
    // Until an instance hears invalidations it does not trust Redis.
    subscribed(&a).await;
    subscribed(&b).await;
    let author = a.user("tiers", Role::Author).await;
    let article = a
        .article(
            &author,
            json!({"title": "Tiers", "body": "b", "status": "published"}),
        )
        .await;
    let uri = format!("/api/v1/articles/{}", article["id"]);

    let tier_of = |response: TestResponse| {
        assert_eq!(response.status, StatusCode::OK);
        request_line(&logs, response.header("x-request-id"))["tier"].clone()
    };
    assert_eq!(
        tier_of(a.get(&uri, None).await),
        "db",
        "the first read loads"
    );
    assert_eq!(
        tier_of(a.get(&uri, None).await),
        "l1",
        "then it is in process"
    );
    assert_eq!(tier_of(b.get(&uri, None).await), "l2", "and shared with b");
    let line = request_line(&logs, a.get("/healthz", None).await.header("x-request-id"));
    assert!(
        line.get("tier").is_none(),
        "no cache behind /healthz: {line}"
    );
}

/// A sink that takes nothing until opened, like a stdout whose reader has
/// stopped reading.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<GateState>, Condvar)>);

#[derive(Default)]
struct GateState {
    open: bool,
    /// A write is waiting for the gate.
    waiting: bool,
    written: Vec<u8>,
}

impl Gate {
    /// Waits (up to 10 s) until a write waits at the gate.
    fn wait_for_a_write(&self) {
        let (state, changed) = &*self.0;
        let state = state.lock().unwrap();
        let (state, _) = changed
            .wait_timeout_while(state, Duration::from_secs(10), |state| !state.waiting)
            .unwrap();
        assert!(state.waiting, "the writer reached the sink");
    }

    fn open(&self) {
        let (state, changed) = &*self.0;
        state.lock().unwrap().open = true;
        changed.notify_all();
    }

    fn lines(&self) -> Vec<Value> {
        let (state, _) = &*self.0;
        let text = String::from_utf8(state.lock().unwrap().written.clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
            .collect()
    }
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (state, changed) = &*self.0;
        let mut state = state.lock().unwrap();
        state.waiting = true;
        changed.notify_all();
        let mut state = changed.wait_while(state, |state| !state.open).unwrap();
        state.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `feedgate_log_lines_dropped_total` as `/metrics` shows it.
fn lines_dropped() -> u64 {
    let text = feedgate::metrics::handle().render();
    text.lines()
        .find_map(|line| line.strip_prefix("feedgate_log_lines_dropped_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no feedgate_log_lines_dropped_total in:\n{text}"))
}

async fn healthz_at_once(app: &TestApp) {
    let response = tokio::time::timeout(Duration::from_secs(2), app.get("/healthz", None))
        .await
        .expect("the request is answered while the log's sink is stuck");
    assert_eq!(response.status, StatusCode::OK);
}

#[tokio::test]
async fn a_stuck_sink_never_holds_a_request_up_and_lines_beyond_the_queue_are_dropped_and_counted()
{
    let (_logs, _guard) = CapturedLogs::start("info");
    let gate = Gate::default();
    let (log, writer) = RequestLog::spawn(Style::Json, gate.clone(), 2);
    let app = TestApp::logged(Backend::Sqlite, log.clone(), |_| {}).await;
    let dropped = lines_dropped();

    healthz_at_once(&app).await;
    gate.wait_for_a_write();
    for _ in 0..10 {
        healthz_at_once(&app).await;
    }
    assert_eq!(
        lines_dropped() - dropped,
        8,
        "two lines wait in the queue, the other eight are dropped"
    );

    gate.open();
    assert!(
        log.flush(),
        "the writer catches up once the sink takes lines"
    );
    let lines = gate.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|line| line["span"]["route"] == "/healthz"));
    writer.finish();
}

#[tokio::test]
async fn finishing_the_writer_writes_out_every_line_still_queued() {
    let (_logs, _guard) = CapturedLogs::start("info");
    let gate = Gate::default();
    let (log, writer) = RequestLog::spawn(Style::Json, gate.clone(), 16);
    let app = TestApp::logged(Backend::Sqlite, log, |_| {}).await;

    healthz_at_once(&app).await;
    gate.wait_for_a_write();
    for _ in 0..4 {
        healthz_at_once(&app).await;
    }
    let opener = gate.clone();
    let opening = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        opener.open();
    });
    writer.finish();
    assert_eq!(gate.lines().len(), 5, "every queued line is written out");
    opening.join().unwrap();
}
