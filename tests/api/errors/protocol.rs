//! Routing and protocol failures: unknown routes, wrong methods, request
//! ids, and URIs or headers too large.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use serde_json::json;

use super::{assert_problem, send_raw};
use crate::support::{Backend, TestApp};

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = TestApp::new(Backend::Sqlite).await;
    for uri in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/articles",
        "/api/v1/articles/1/comments/2/deeper",
    ] {
        let response = app.get(uri, None).await;
        assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
    }
    let response = app.post("/api/v1/nope", json!({}), None).await;
    assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn wrong_methods_are_405_problems_with_an_allow_header() {
    let app = TestApp::new(Backend::Sqlite).await;
    let cases = [
        (Method::PUT, "/api/v1/tags", vec!["GET"]),
        (Method::DELETE, "/api/v1/articles", vec!["GET", "POST"]),
        (Method::GET, "/api/v1/tokens", vec!["POST"]),
        (Method::POST, "/healthz", vec!["GET"]),
        (Method::POST, "/api/v1/comments/1", vec!["GET", "DELETE"]),
    ];
    for (method, uri, allowed) in cases {
        let response = send_raw(&app, method.clone(), uri, None, None, Body::empty()).await;
        assert_problem(
            &response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        );
        let allow = response.header("allow");
        for expected in allowed {
            assert!(
                allow.split(',').any(|m| m.trim() == expected),
                "{method} {uri}: Allow {allow:?} lacks {expected}"
            );
        }
        assert!(
            !allow.split(',').any(|m| m.trim() == method.as_str()),
            "{method} {uri}: Allow {allow:?} names the refused method"
        );
    }
}

/// A request id travels into logs and back to the client: only short ids of
/// plain characters are kept; anything else is replaced by a fresh one.
#[tokio::test]
async fn only_short_plain_request_ids_are_kept() {
    let app = TestApp::new(Backend::Sqlite).await;
    let send = |value: HeaderValue| {
        let request = Request::get("/healthz")
            .header("x-request-id", value)
            .body(Body::empty())
            .unwrap();
        app.send(request)
    };
    let kept = "Req_1.2-".repeat(8);
    assert_eq!(kept.len(), 64);
    let response = send(HeaderValue::from_str(&kept).unwrap()).await;
    assert_eq!(response.header("x-request-id"), kept);

    let refused = [
        HeaderValue::from_str(&"a".repeat(8 * 1024)).unwrap(),
        HeaderValue::from_str(&"a".repeat(65)).unwrap(),
        HeaderValue::from_bytes("ünïcode".as_bytes()).unwrap(),
        HeaderValue::from_static("has space"),
        HeaderValue::from_static("<script>"),
        HeaderValue::from_static(""),
    ];
    for value in refused {
        let response = send(value.clone()).await;
        let id = response.header("x-request-id");
        assert_ne!(id.as_bytes(), value.as_bytes());
        assert!(
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{id:?}"
        );
    }
}

#[tokio::test]
async fn an_overlong_uri_is_a_414_problem_and_huge_headers_a_431_problem() {
    let app = TestApp::new(Backend::Sqlite).await;
    let long = format!("/api/v1/articles?q={}", "a".repeat(20 * 1024));
    let response = app.get(&long, None).await;
    assert_problem(&response, StatusCode::URI_TOO_LONG, "uri_too_long");

    let request = Request::get("/api/v1/articles")
        .header("x-padding-1", "b".repeat(20 * 1024))
        .header("x-padding-2", "b".repeat(20 * 1024))
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    let problem = assert_problem(
        &response,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    );
    assert!(!response.text().contains("bbbb"), "{problem}");
}
