//! The request log as operators read it (JSON lines): one line per request
//! with its route template, status, latency, tier and id; error lines carry
//! the id of the request they belong to; credentials never appear.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use feedgate::telemetry::AnsweredBy;
use serde_json::Value;
use sqlx::{Connection, SqliteConnection};
use tower::{Layer, ServiceExt};

use crate::support::{Backend, CapturedLogs, TestApp, TestResponse};

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
    assert!(line.get("tier").is_none(), "no tier was named: {line}");
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
async fn the_tier_a_response_names_is_logged() {
    let (logs, _guard) = CapturedLogs::start("info");
    let service = tower::service_fn(|_: Request<Body>| async {
        let mut response = Response::new(Body::from("{}"));
        response.extensions_mut().insert(AnsweredBy("l2"));
        Ok::<_, std::convert::Infallible>(response)
    });
    let request = Request::get("/anything")
        .header("x-request-id", "tiered-1")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let response = feedgate::http::RequestLogLayer
        .layer(service)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let line = request_line(&logs, "tiered-1");
    assert_eq!(line["tier"], "l2", "{line}");
    assert_eq!(line["status"], 200, "{line}");
}
