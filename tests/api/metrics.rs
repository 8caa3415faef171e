//! `/metrics` stays bounded whatever clients send: every label takes its
//! values from a finite set.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

use crate::support::{Backend, TestApp, has_metric_line};

async fn send(app: &TestApp, method: &str, uri: &str) -> StatusCode {
    let method = Method::from_bytes(method.as_bytes()).expect("a token method");
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    app.send(request).await.status
}

async fn metrics(app: &TestApp) -> String {
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status, StatusCode::OK);
    response.text()
}

#[tokio::test]
async fn invented_methods_and_unknown_paths_do_not_grow_the_metrics() {
    let app = TestApp::new(Backend::Sqlite).await;
    // The folded label sets exist after one request of each kind.
    assert_eq!(
        send(&app, "BREW", "/api/v1/articles").await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(send(&app, "GET", "/nowhere/1").await, StatusCode::NOT_FOUND);
    assert_eq!(
        send(&app, "BREW", "/nowhere/2").await,
        StatusCode::NOT_FOUND
    );
    let before = metrics(&app).await.len();

    let padding = "Q".repeat(10_000);
    for i in 0..100 {
        let method = format!("X{i}{padding}");
        send(&app, &method, "/api/v1/articles").await;
        send(&app, &method, &format!("/nowhere/{i}{padding}")).await;
    }

    let text = metrics(&app).await;
    assert!(
        !text.contains("QQQQ"),
        "a client's method or path became a label"
    );
    let has = |needles: &[&str]| has_metric_line(&text, needles);
    assert!(
        has(&[
            "feedgate_http_requests_total{",
            r#"method="other""#,
            r#"route="/api/v1/articles""#,
            r#"status="405""#
        ]),
        "{text}"
    );
    assert!(
        has(&[
            "feedgate_http_requests_total{",
            r#"route="unmatched""#,
            r#"status="404""#
        ]),
        "{text}"
    );
    // 2 MB of invented names went in; only counters moved.
    assert!(
        text.len() < before + 20_000,
        "metrics grew from {before} to {} bytes",
        text.len()
    );
}
