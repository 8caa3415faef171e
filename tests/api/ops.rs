//! Operational endpoints and cross-cutting HTTP behaviour: health, readiness,
//! the OpenAPI document and its UI, request ids, CORS, and a real socket.

use std::io::{Read, Write};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use feedgate::domain::Role;
use serde_json::{Value, json};

use feedgate::config::Secret;

use crate::on_both_backends;
use crate::support::{Backend, RedisServer, TestApp, has_metric_line};

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
async fn with_listed_origins_every_read_varies_on_origin_and_names_only_listed_ones() {
    let listed = "https://app.example.com";
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        s.server.cors_origins =
            feedgate::config::CorsOrigins::Listed(vec![listed.parse().unwrap()]);
    })
    .await;
    let get = |origin: Option<&str>| {
        let mut request = Request::get("/api/v1/articles");
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        app.send(request.body(Body::empty()).unwrap())
    };
    let varies = |response: &crate::support::TestResponse| -> String {
        let values = response.headers.get_all(header::VARY).iter();
        let values: Vec<&str> = values.map(|v| v.to_str().unwrap()).collect();
        values.join(", ").to_lowercase()
    };

    for origin in [None, Some(listed), Some("https://evil.example")] {
        let response = get(origin).await;
        assert_eq!(response.status, StatusCode::OK);
        let vary = varies(&response);
        // A shared cache must not hand one origin's answer to another.
        assert!(vary.contains("origin"), "{origin:?}: {vary}");
        assert!(vary.contains("accept-encoding"), "{origin:?}: {vary}");
        let exposed = response
            .header("access-control-expose-headers")
            .to_lowercase();
        assert!(exposed.contains("x-request-id"), "{origin:?}: {exposed}");
        let allowed = response.headers.get("access-control-allow-origin");
        let expected = origin.filter(|o| *o == listed);
        assert_eq!(allowed.map(|v| v.to_str().unwrap()), expected, "{origin:?}");
    }
}

/// A whole HTTP/1.1 exchange on a real socket, as raw text.
async fn raw_get(address: std::net::SocketAddr, path: &'static str) -> String {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("the server accepts");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("a full reply");
        reply
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_real_socket_serves_healthz_over_http_1_1() {
    let app = TestApp::new(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = feedgate::http::router(app.state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let reply = raw_get(address, "/healthz").await;
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

#[tokio::test]
async fn with_an_ops_address_metrics_move_off_the_public_router() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        s.server.ops_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    app.get("/metrics", None)
        .await
        .problem(StatusCode::NOT_FOUND);
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    let doc = openapi_json(&app).await;
    assert!(
        doc["paths"].get("/metrics").is_some(),
        "the document still describes the whole service"
    );

    let ops = TestApp {
        router: feedgate::http::ops_router(app.state.clone()),
        state: app.state.clone(),
        db: app.db.shared(),
    };
    let metrics = ops.get("/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.text().contains("feedgate_db_pool_size"));
    assert_eq!(ops.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(ops.get("/readyz", None).await.status, StatusCode::OK);
    ops.get("/api/v1/articles", None)
        .await
        .problem(StatusCode::NOT_FOUND);
    ops.get("/docs", None).await.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ops_server_answers_on_its_socket_and_stops_when_told() {
    let app = TestApp::new(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(feedgate::http::serve_ops(
        listener,
        feedgate::http::ops_router(app.state.clone()),
        async move {
            let _ = stopped.await;
        },
    ));

    let reply = raw_get(address, "/metrics").await;
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(
        reply.contains("feedgate_db_pool_max_connections"),
        "{reply}"
    );

    drop(stop);
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the ops server stops once told");
    outcome.unwrap().expect("it stops cleanly");
}

/// The value of an unlabelled gauge, or of the first series matching `labels`.
fn gauge(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let (series, _) = line.rsplit_once(' ').unwrap_or_default();
            series == name || (series.starts_with(&format!("{name}{{")) && series.contains(labels))
        })
        .and_then(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.parse().ok())
}

#[tokio::test]
async fn metrics_show_database_pool_gauges_and_whether_redis_is_up() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::with_settings(Backend::MySql, |s| {
        s.redis.url = Secret::new(&url);
        s.cache.redis_prefix = "feedgate-ops-test".into();
    })
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !app.state.cache.is_subscribed() {
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let text = app.get("/metrics", None).await.text();
    assert_eq!(
        gauge(&text, "feedgate_db_pool_max_connections", ""),
        Some(6.0),
        "fills' and writes' connections together: {text}"
    );
    let size = gauge(&text, "feedgate_db_pool_size", "").expect("a pool size");
    let idle = gauge(&text, "feedgate_db_pool_connections", r#"state="idle""#).expect("idle");
    let in_use = gauge(&text, "feedgate_db_pool_connections", r#"state="in_use""#).expect("in use");
    assert!(size >= 1.0, "{text}");
    assert_eq!(idle + in_use, size, "{text}");
    assert_eq!(gauge(&text, "feedgate_redis_up", ""), Some(1.0), "{text}");

    redis.stop().await;
    let text = app.get("/metrics", None).await.text();
    assert_eq!(gauge(&text, "feedgate_redis_up", ""), Some(0.0), "{text}");
}
