//! Request bodies that cannot be taken: malformed or non-UTF-8 JSON, the
//! wrong content type, too large, wrong types, unknown fields, deep nesting;
//! and what an error says of the value it refused.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use feedgate::domain::Role;
use serde_json::json;

use super::{article_uri, assert_problem, post_json_bytes, send_raw};
use crate::support::{Backend, TestApp};

#[tokio::test]
async fn malformed_json_bodies_are_400_problems() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    for body in [
        "",
        "{",
        r#"{"title": "x", "body": "y""#,
        r#"{"title": "x", "body": "y",}"#,
        "{title: 'x'}",
        "not json",
        r#"{"title": "x", "body": "y"} trailing"#,
        r#"{"title": "x", "body": "y"}{}"#,
    ] {
        let response = post_json_bytes(&app, "/api/v1/articles", Some(&ada.token), body).await;
        assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
    }
    let response = post_json_bytes(&app, "/api/v1/tokens", None, "{\"grant_type\":").await;
    assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_415() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    let body = json!({"title": "Typed", "body": "Text."}).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let response = send_raw(
            &app,
            Method::POST,
            "/api/v1/articles",
            content_type,
            Some(&ada.token),
            body.clone(),
        )
        .await;
        let problem = assert_problem(
            &response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{problem}"
        );
    }
    let response = send_raw(
        &app,
        Method::POST,
        "/api/v1/articles",
        Some("application/json; charset=utf-8"),
        Some(&ada.token),
        body,
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| s.server.body_limit_bytes = 1024).await;
    let ada = app.user("ada", Role::Author).await;

    let small = json!({"title": "Small", "body": "x".repeat(500)});
    let response = app.post("/api/v1/articles", small, Some(&ada.token)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());

    let large = json!({"title": "Large", "body": "x".repeat(4096)});
    let response = app.post("/api/v1/articles", large, Some(&ada.token)).await;
    assert_problem(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let declared = Request::post("/api/v1/users")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "4096")
        .body(Body::from(vec![b' '; 4096]))
        .unwrap();
    let response = app.send(declared).await;
    assert_problem(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let listed = app
        .get("/api/v1/articles?status=draft", Some(&ada.token))
        .await;
    assert_eq!(
        listed.json()["pagination"]["total"],
        1,
        "only the small one"
    );
}

#[tokio::test]
async fn a_two_mebibyte_body_is_413_with_the_default_limit() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    let huge = json!({"title": "Huge", "body": "x".repeat(2 * 1024 * 1024)});
    let response = app.post("/api/v1/articles", huge, Some(&ada.token)).await;
    assert_problem(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let comment = json!({"body": "y".repeat(2 * 1024 * 1024)});
    let response = app
        .post("/api/v1/articles/1/comments", comment, Some(&ada.token))
        .await;
    assert_problem(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[tokio::test]
async fn wrong_json_types_are_422_problems() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    for body in [
        json!({"title": 5, "body": "Text."}),
        json!({"title": "T", "body": "Text.", "tags": "x"}),
        json!({"title": "T", "body": "Text.", "tags": [1, 2]}),
        json!({"title": "T", "body": null}),
        json!({"title": ["T"], "body": "Text."}),
        json!({"title": "T", "body": {"text": "nested"}}),
        json!({"title": true, "body": false}),
    ] {
        let response = app
            .post("/api/v1/articles", body.clone(), Some(&ada.token))
            .await;
        assert_problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let response = app
        .post(
            "/api/v1/users",
            json!({"username": 42, "password": "long enough"}),
            None,
        )
        .await;
    assert_problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

/// `status` and `role` are enums: a number there is as much a wrong type as
/// a number in `title`, and the body is valid JSON, so it is a 422 too.
#[tokio::test]
async fn a_wrong_json_type_for_an_enum_field_is_422_not_400() {
    let app = TestApp::new(Backend::Sqlite).await;
    let admin = app.user("root", Role::Admin).await;
    for status in [json!(1), json!(true), json!(["published"])] {
        let body = json!({"title": "T", "body": "Text.", "status": status});
        let response = app.post("/api/v1/articles", body, Some(&admin.token)).await;
        assert_problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let uri = format!("/api/v1/users/{}", admin.id);
    let response = app
        .patch(&uri, json!({"role": 5}), Some(&admin.token))
        .await;
    assert_problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn a_json_array_or_scalar_instead_of_an_object_is_422() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    for body in [
        json!([]),
        json!([{"title": "T", "body": "Text."}]),
        json!("title"),
        json!(42),
        json!(null),
    ] {
        let response = app.post("/api/v1/articles", body, Some(&ada.token)).await;
        assert_problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
}

/// serde reads structs from sequences by field order; an API that speaks
/// JSON objects must not take `["title", "body", ...]` for an article.
#[tokio::test]
async fn an_array_in_field_order_is_not_taken_for_an_object() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    let response = app
        .post(
            "/api/v1/articles",
            json!(["Positional", "Body.", null, "published", null, null]),
            Some(&ada.token),
        )
        .await;
    assert_problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let response = app
        .post(
            "/api/v1/users",
            json!(["positional", "long enough pw"]),
            None,
        )
        .await;
    assert_problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn unknown_fields_are_422_naming_the_field() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Open", "body": "Text.", "status": "published"}),
        )
        .await;
    let comments = format!("{}/comments", article_uri(&article));
    let cases = [
        (
            "/api/v1/articles",
            json!({"title": "T", "body": "B", "id": 7}),
        ),
        (
            "/api/v1/articles",
            json!({"title": "T", "body": "B", "author": {"id": 1}}),
        ),
        (
            "/api/v1/articles",
            json!({"title": "T", "body": "B", "Title": "x"}),
        ),
        (comments.as_str(), json!({"body": "Hi", "article_id": 99})),
        (
            "/api/v1/users",
            json!({"username": "mallory", "password": "long enough", "admin": true}),
        ),
    ];
    for (uri, body) in cases {
        let unknown = body
            .as_object()
            .unwrap()
            .keys()
            .find(|k| !["title", "body", "username", "password"].contains(&k.as_str()))
            .unwrap()
            .clone();
        let response = app.post(uri, body, Some(&ada.token)).await;
        let problem = assert_problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            problem["errors"][0]["field"], unknown,
            "{uri}: {problem} should name {unknown}"
        );
        assert_eq!(problem["errors"][0]["code"], "unknown_field", "{problem}");
    }
    let listed = app.get(&comments, None).await;
    assert_eq!(listed.json()["pagination"]["total"], 0);
}

#[tokio::test]
async fn deeply_nested_json_is_a_4xx_not_a_500() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    let depth = 50_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let unclosed = "[{\"a\":".repeat(depth);
    let in_a_field = format!(r#"{{"title": "T", "body": "B", "tags": {arrays}}}"#);
    let tagged = format!(r#"{{"grant_type": "password", "username": {objects}}}"#);
    let tag_last = format!(r#"{{"junk": {arrays}, "grant_type": "password"}}"#);
    for uri in ["/api/v1/articles", "/api/v1/users", "/api/v1/tokens"] {
        for body in [
            &arrays,
            &objects,
            &unclosed,
            &in_a_field,
            &tagged,
            &tag_last,
        ] {
            let response = post_json_bytes(&app, uri, Some(&ada.token), body.clone()).await;
            assert!(
                response.status.is_client_error(),
                "{uri}: {} {}",
                response.status,
                response.text()
            );
            assert_eq!(response.header("content-type"), "application/problem+json");
        }
    }
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn bodies_that_are_not_utf8_are_400() {
    let app = TestApp::new(Backend::Sqlite).await;
    let ada = app.user("ada", Role::Author).await;
    let bodies: [&[u8]; 4] = [
        b"{\"title\": \"\xff\xfe\", \"body\": \"x\"}",
        b"{\"title\": \"caf\xc3\", \"body\": \"x\"}",
        b"{\"title\": \"\xed\xa0\x80\", \"body\": \"x\"}",
        b"\xef\xbb\xbf\xff{\"title\": \"t\", \"body\": \"x\"}",
    ];
    for body in bodies {
        let response =
            post_json_bytes(&app, "/api/v1/articles", Some(&ada.token), body.to_vec()).await;
        assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
    }
    let listed = app
        .get("/api/v1/articles?status=draft", Some(&ada.token))
        .await;
    assert_eq!(listed.json()["pagination"]["total"], 0);
}

/// Values a client sent never come back in an error: not in `detail`, not
/// in `errors`. The field and the rule do.
#[tokio::test]
async fn error_details_name_the_field_and_rule_but_never_echo_the_value() {
    let app = TestApp::new(Backend::Sqlite).await;
    let admin = app.user("root", Role::Admin).await;
    let marker = "<img src=x onerror=alert(1)>";
    let cases = [
        (
            "/api/v1/articles",
            json!({"title": 98765432, "body": "Text."}),
            "title",
            "type",
        ),
        (
            "/api/v1/articles",
            json!({"title": "T", "body": "Text.", "status": marker}),
            "status",
            "one_of",
        ),
        (
            "/api/v1/articles",
            json!({"title": "T", "body": "Text.", "tags": ["ok", 98765432]}),
            "tags[1]",
            "type",
        ),
        (
            "/api/v1/articles",
            json!({"title": "T", "body": "Text.", marker: 98765432}),
            "",
            "unknown_field",
        ),
        (
            "/api/v1/tokens",
            json!({"grant_type": marker, "username": "u", "password": "p"}),
            "grant_type",
            "one_of",
        ),
        (
            "/api/v1/users",
            json!({"username": "newcomer", "password": 98765432}),
            "password",
            "type",
        ),
    ];
    for (uri, body, field, code) in cases {
        let response = app.post(uri, body.clone(), Some(&admin.token)).await;
        let problem = assert_problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let text = response.text();
        assert!(
            !text.contains("98765432") && !text.contains("<img") && !text.contains("onerror"),
            "{body} echoed: {text}"
        );
        if !field.is_empty() {
            assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        }
        assert_eq!(problem["errors"][0]["code"], code, "{body}: {problem}");
    }
    let uri = format!("/api/v1/users/{}", admin.id);
    let response = app
        .patch(&uri, json!({"role": marker}), Some(&admin.token))
        .await;
    let problem = assert_problem(
        &response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(!response.text().contains("<img"), "{problem}");
    assert_eq!(problem["errors"][0]["field"], "role", "{problem}");

    for query in [
        "status=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "page=98765432x",
    ] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        let problem = assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        let text = response.text();
        assert!(
            !text.contains("98765432") && !text.contains("<img"),
            "{query} echoed: {text}"
        );
        let field = query.split('=').next().unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}
