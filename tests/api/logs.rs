//! The request log as operators read it (JSON lines): one line per request
//! with its route template, status, latency, tier and id; error lines carry
//! the id of the request they belong to; credentials never appear.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use feedgate::domain::Role;
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection};

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

#[tokio::test]
async fn each_request_is_logged_once_by_route_template_with_status_latency_and_id() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (logs, _guard) = CapturedLogs::start("info");

    let response = get_with(&app, "/api/v1/articles/424242", &[]).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let id = response.header("x-request-id");
    let line = request_line(&logs, id);
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["span"]["route"], "/api/v1/articles/{id}", "{line}");
    assert_eq!(line["status"], 404, "{line}");
    assert!(line["latency_us"].is_u64(), "{line}");
    assert_eq!(line["tier"], "db", "a missing article is looked up: {line}");
    assert!(!logs.text().contains("424242"), "raw paths are not logged");

    let response = get_with(&app, "/no/such/place", &[]).await;
    let line = request_line(&logs, response.header("x-request-id"));
    assert_eq!(line["span"]["route"], "unmatched", "{line}");
    assert_eq!(line["status"], 404, "{line}");
    assert!(!logs.text().contains("/no/such/place"));
}

#[tokio::test]
async fn a_client_chosen_request_id_is_the_one_logged() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (logs, _guard) = CapturedLogs::start("info");
    let response = get_with(&app, "/healthz", &[("x-request-id", "client-id-7")]).await;
    assert_eq!(response.header("x-request-id"), "client-id-7");
    let line = request_line(&logs, "client-id-7");
    assert_eq!(line["span"]["route"], "/healthz", "{line}");
    assert_eq!(line["status"], 200, "{line}");
}

#[tokio::test]
async fn authorization_headers_and_cookies_are_never_logged() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (logs, _guard) = CapturedLogs::start("trace");
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
    let app = TestApp::new(Backend::Sqlite).await;
    drop_table(&app, "feed_counts").await;
    let (logs, _guard) = CapturedLogs::start("info");

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
    }
    assert_eq!(request_line(&logs, id)["status"], 500);
}

#[tokio::test]
async fn request_lines_can_be_filtered_out_leaving_error_lines() {
    let app = TestApp::new(Backend::Sqlite).await;
    drop_table(&app, "feed_counts").await;
    let (logs, _guard) = CapturedLogs::start("info,feedgate::request=warn");

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
    assert!(
        lines.iter().any(|line| line["level"] == "ERROR"),
        "the error is still logged:\n{}",
        logs.text()
    );
}

#[tokio::test]
async fn each_request_line_names_the_tier_that_answered() {
    let redis = SharedRedis::new();
    let a = TestApp::with_settings(Backend::Sqlite, |s| redis.configure(s)).await;
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
    let (logs, _guard) = CapturedLogs::start("info");

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
