//! Operational endpoints and cross-cutting HTTP behaviour: health, readiness,
//! the OpenAPI document and its UI, request ids, CORS, and a real socket.

use std::io::{Read, Write};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use feedgate::domain::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, has_metric_line};

#[tokio::test]
async fn healthz_answers_200_with_status_ok() {
    let app = TestApp::new(Backend::Sqlite).await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(
        response
            .header("content-type")
            .starts_with("application/json"),
        "{:?}",
        response.headers
    );
    assert_eq!(response.json(), json!({"status": "ok"}));
}

async fn readyz_reports_the_database_ok(app: &TestApp) {
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let body = response.json();
    assert_eq!(body["status"], "ready", "{body}");
    let checks = body["checks"].as_array().expect("checks is a list");
    let database = checks
        .iter()
        .find(|check| check["name"] == "database")
        .unwrap_or_else(|| panic!("no database check in {body}"));
    assert_eq!(database["status"], "ok", "{body}");
}

async fn openapi_json(app: &TestApp) -> Value {
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(
        response
            .header("content-type")
            .starts_with("application/json"),
        "{:?}",
        response.headers
    );
    response.json()
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_documents_every_route_and_method() {
    let app = TestApp::new(Backend::Sqlite).await;
    let doc = openapi_json(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "feedgate");
    let expected: [(&str, &[&str]); 11] = [
        ("/api/v1/articles", &["get", "post"]),
        ("/api/v1/articles/{id}", &["get", "put", "patch", "delete"]),
        ("/api/v1/articles/{id}/comments", &["get", "post"]),
        ("/api/v1/comments/{id}", &["get", "delete"]),
        ("/api/v1/tags", &["get"]),
        ("/api/v1/users", &["post"]),
        ("/api/v1/users/me", &["get"]),
        ("/api/v1/users/{id}", &["get", "patch"]),
        ("/api/v1/tokens", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
    ];
    let paths = doc["paths"].as_object().expect("paths is an object");
    for (path, methods) in expected {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing from {:?}", paths.keys()));
        for method in ["get", "post", "put", "patch", "delete"] {
            let documented = item.get(method).is_some();
            assert_eq!(
                documented,
                methods.contains(&method),
                "{method} {path}: documented={documented}"
            );
            if documented {
                assert!(
                    item[method]["responses"]
                        .as_object()
                        .is_some_and(|r| !r.is_empty()),
                    "{method} {path} documents no responses"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_declares_the_bearer_scheme_and_uses_it() {
    let app = TestApp::new(Backend::Sqlite).await;
    let doc = openapi_json(&app).await;
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert_eq!(scheme["bearerFormat"], "JWT", "{scheme}");
    let create = &doc["paths"]["/api/v1/articles"]["post"];
    assert!(
        create["security"].to_string().contains("\"bearer\""),
        "POST /api/v1/articles names no bearer security: {create}"
    );
    for status in ["201", "401", "403", "409", "422"] {
        assert!(
            create["responses"].get(status).is_some(),
            "POST /api/v1/articles does not document {status}"
        );
    }
}

#[tokio::test]
async fn docs_serve_the_swagger_ui_as_html() {
    let app = TestApp::new(Backend::Sqlite).await;
    let mut response = app.get("/docs", None).await;
    if response.status.is_redirection() {
        let location = response.header("location").to_owned();
        assert!(location.starts_with("/docs"), "redirects to {location}");
        response = app.get(&location, None).await;
    }
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(
        response.header("content-type").starts_with("text/html"),
        "{:?}",
        response.headers
    );
    let html = response.text();
    assert!(html.to_lowercase().contains("<html"), "{html}");
    assert!(html.contains("swagger"), "{html}");

    let config = app.get("/docs/swagger-initializer.js", None).await;
    assert_eq!(config.status, StatusCode::OK);
    assert!(config.text().contains("/openapi.json"), "{}", config.text());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    let responses = [
        app.get("/healthz", None).await,
        app.get("/api/v1/articles", None).await,
        app.get("/openapi.json", None).await,
        app.get("/nope", None).await,
        app.get("/api/v1/users/me", None).await,
        app.delete("/api/v1/tags", None).await,
        app.post("/api/v1/articles", json!({"title": 1}), Some(&ada.token))
            .await,
        app.post(
            "/api/v1/articles",
            json!({"title": "Id", "body": "Text."}),
            Some(&ada.token),
        )
        .await,
    ];
    let mut ids: Vec<&str> = responses.iter().map(|r| r.header("x-request-id")).collect();
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), responses.len(), "request ids repeat: {ids:?}");

    let chosen = Request::get("/healthz")
        .header("x-request-id", "client-chosen-42")
        .body(Body::empty())
        .unwrap();
    let response = app.send(chosen).await;
    assert_eq!(response.header("x-request-id"), "client-chosen-42");
}

#[tokio::test]
async fn a_cors_preflight_on_articles_is_answered() {
    let app = TestApp::new(Backend::Sqlite).await;
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/articles")
        .header(header::ORIGIN, "https://app.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type",
        )
        .body(Body::empty())
        .unwrap();
    let response = app.send(preflight).await;
    assert!(response.status.is_success(), "{}", response.status);
    let origin = response.header("access-control-allow-origin");
    assert!(
        origin == "*" || origin == "https://app.example.com",
        "{origin}"
    );
    let methods = response.header("access-control-allow-methods");
    assert!(methods == "*" || methods.contains("POST"), "{methods}");
    let headers = response
        .header("access-control-allow-headers")
        .to_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );

    let simple = Request::get("/api/v1/articles")
        .header(header::ORIGIN, "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    let response = app.send(simple).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(!response.header("access-control-allow-origin").is_empty());
    let exposed = response
        .header("access-control-expose-headers")
        .to_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
}

#[tokio::test]
async fn a_real_socket_serves_healthz_over_http_1_1() {
    let app = TestApp::new(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = feedgate::http::router(app.state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("the server accepts");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("a full reply");
        reply
    })
    .await
    .unwrap();
    server.abort();

    let status_line = reply.lines().next().unwrap_or_default();
    assert_eq!(status_line, "HTTP/1.1 200 OK", "{reply}");
    let lower = reply.to_lowercase();
    assert!(lower.contains("\r\nx-request-id: "), "{reply}");
    assert!(reply.ends_with(r#"{"status":"ok"}"#), "{reply}");
}

#[tokio::test]
async fn request_metrics_are_labelled_by_route_template_and_status() {
    let app = TestApp::new(Backend::Sqlite).await;
    assert_eq!(
        app.get("/api/v1/articles/424242", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/tags", None).await.status, StatusCode::OK);

    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.header("content-type").starts_with("text/plain"));
    let text = metrics.text();
    let has = |needles: &[&str]| has_metric_line(&text, needles);
    assert!(
        has(&[
            "feedgate_http_requests_total{",
            r#"route="/api/v1/articles/{id}""#,
            r#"status="404""#
        ]),
        "{text}"
    );
    assert!(
        has(&[
            "feedgate_http_requests_total{",
            r#"route="/api/v1/tags""#,
            r#"status="200""#
        ]),
        "{text}"
    );
    assert!(
        has(&[
            "feedgate_http_request_duration_seconds_bucket{",
            r#"route="/api/v1/tags""#
        ]),
        "{text}"
    );
    assert!(!text.contains("424242"), "raw paths must not become labels");
}

on_both_backends!(readyz_reports_the_database_ok);
