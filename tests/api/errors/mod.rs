//! Every failure is RFC 9457 problem JSON with the right status: routing,
//! protocol and body errors, hostile input (SQL metacharacters, odd unicode,
//! overflowing numbers) and preconditions. Bad input is a 4xx, never a 500.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;

use crate::support::{TestApp, TestResponse};

/// Asserts the full problem shape: status, content type, title, code, detail
/// and `cache-control: no-store`. Returns the JSON for further checks.
fn assert_problem(response: &TestResponse, status: StatusCode, code: &str) -> Value {
    let problem = response.problem(status);
    assert_eq!(problem["type"], "about:blank", "{problem}");
    assert_eq!(
        problem["title"],
        status.canonical_reason().unwrap(),
        "{problem}"
    );
    assert_eq!(problem["code"], code, "{problem}");
    assert!(!problem["detail"].as_str().unwrap().is_empty(), "{problem}");
    assert_eq!(response.header("cache-control"), "no-store");
    problem
}

/// Sends raw bytes with an optional content type and bearer token.
async fn send_raw(
    app: &TestApp,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    token: Option<&str>,
    body: impl Into<Body>,
) -> TestResponse {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    app.send(request.body(body.into()).unwrap()).await
}

async fn post_json_bytes(
    app: &TestApp,
    uri: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> TestResponse {
    send_raw(
        app,
        Method::POST,
        uri,
        Some("application/json"),
        token,
        body,
    )
    .await
}

fn article_uri(article: &Value) -> String {
    format!("/api/v1/articles/{}", article["id"])
}

mod bodies;
mod input;
mod protocol;
