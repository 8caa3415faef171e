//! Every failure is RFC 9457 problem JSON with the right status: routing,
//! protocol and body errors, hostile input (SQL metacharacters, odd unicode,
//! overflowing numbers) and preconditions. Bad input is a 4xx, never a 500.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use feedgate::domain::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, TestResponse};

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

async fn unicode_round_trips_exactly(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let title = "Emoji 🦀🎉👩‍👩‍👧 日本語の記事 مرحبا \u{200f}בעולם\u{202e}txt e\u{301}\u{308}";
    let body = "Ünïcödé body: 中文, 한국어, ไทย, z\u{0335}\u{0321}a\u{0337}l\u{0358}g\u{0322}o, \
                𝔘𝔫𝔦𝔠𝔬𝔡𝔢, \u{feff}BOM, \u{1F3F3}\u{FE0F}\u{200D}\u{1F308}.";
    let comment = "👍 同意 — أوافق e\u{301}";
    let created = app
        .article(
            &ada,
            json!({"title": title, "body": body, "status": "published", "tags": ["日本語"]}),
        )
        .await;
    assert_eq!(created["title"], title);
    assert_eq!(created["body"], body);
    assert_eq!(created["summary"], body, "a short body is its own summary");

    let read = app.get(&article_uri(&created), None).await;
    assert_eq!(read.status, StatusCode::OK);
    let read = read.json();
    assert_eq!(read["title"], title);
    assert_eq!(read["body"], body);
    assert_eq!(read["tags"], json!(["日本語"]));

    let uri = format!("{}/comments", article_uri(&created));
    let posted = app
        .post(&uri, json!({"body": comment}), Some(&ada.token))
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text());
    let listed = app.get(&uri, None).await.json();
    assert_eq!(listed["items"][0]["body"], comment);

    let found = app
        .get(
            "/api/v1/articles?q=%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AE%E8%A8%98%E4%BA%8B",
            None,
        )
        .await
        .json();
    assert_eq!(found["pagination"]["total"], 1, "{found}");
    assert_eq!(found["items"][0]["title"], title);
    let tagged = app
        .get("/api/v1/articles?tag=%E6%97%A5%E6%9C%AC%E8%AA%9E", None)
        .await
        .json();
    assert_eq!(tagged["pagination"]["total"], 1, "{tagged}");
}

const HOSTILE: [&str; 6] = [
    "'; DROP TABLE articles; --",
    "\" OR \"\"=\"",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "back\\slash \\' \\\" \\\\ end\\",
    "nul \u{0} inside",
    "100% _wild_ [card] !escape",
];

async fn sql_metacharacters_are_stored_and_returned_literally(app: &TestApp) {
    let ada = app.user("o'hara\\\"--", Role::Author).await;
    let mut ids = Vec::new();
    for text in HOSTILE {
        let created = app
            .article(
                &ada,
                json!({"title": text, "body": text, "summary": text, "status": "published"}),
            )
            .await;
        let read = app.get(&article_uri(&created), None).await.json();
        assert_eq!(read["title"], text);
        assert_eq!(read["body"], text);
        assert_eq!(read["summary"], text);
        assert_eq!(read["author"]["username"], ada.username);

        let uri = format!("{}/comments", article_uri(&created));
        let posted = app
            .post(&uri, json!({"body": text}), Some(&ada.token))
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text());
        let comment = app.get(posted.header("location"), None).await.json();
        assert_eq!(comment["body"], text);
        ids.push(created["id"].clone());
    }

    let everything = app.get("/api/v1/articles", None).await.json();
    assert_eq!(everything["pagination"]["total"], HOSTILE.len());

    let by_author = app
        .get("/api/v1/articles?author=o%27hara%5C%22--", None)
        .await
        .json();
    assert_eq!(
        by_author["pagination"]["total"],
        HOSTILE.len(),
        "{by_author}"
    );
    for injected in [
        "%27%20OR%20%271%27%3D%271",
        "x%27--",
        "%22%20OR%20%22%22%3D%22",
    ] {
        let listed = app
            .get(&format!("/api/v1/articles?author={injected}"), None)
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
        assert_eq!(listed.json()["pagination"]["total"], 0, "author={injected}");
    }

    // Searches match the words around the metacharacters, which are
    // separators: no search syntax or SQL gets through.
    let searches = [
        ("%27%3B%20DROP%20TABLE", 0),
        ("%22%20OR%20%22%22%3D%22", 1),
        ("DELETE%20FROM%20users", 2),
        ("%5Cback%20%5Cslash%22", 3),
        ("inside%00", 4),
        ("100%25%20_wild_%20%5Bcard%5D%20!escape", 5),
        ("%2B_wild_%20-card%20%22escape%22%20*", 5),
    ];
    for (q, index) in searches {
        let found = app
            .get(&format!("/api/v1/articles?q={q}"), None)
            .await
            .json();
        assert_eq!(found["pagination"]["total"], 1, "q={q}: {found}");
        assert_eq!(found["items"][0]["id"], ids[index], "q={q}");
    }
    // Metacharacters alone are no word to search for.
    for q in ["%25", "%27", "%5C", "%22%3D%22"] {
        let response = app.get(&format!("/api/v1/articles?q={q}"), None).await;
        assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
    }
    let sorted = app.get("/api/v1/articles?sort=title%3B%20DROP", None).await;
    assert_problem(&sorted, StatusCode::BAD_REQUEST, "bad_request");
    let tagged = app
        .get("/api/v1/articles?tag=x%27%20OR%201%3D1", None)
        .await;
    assert_problem(&tagged, StatusCode::BAD_REQUEST, "bad_request");

    let refused = app
        .post(
            "/api/v1/users",
            json!({"username": "x'; DROP TABLE users; --", "password": "long enough pw"}),
            None,
        )
        .await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // Every table still works.
    let after = app
        .article(
            &ada,
            json!({"title": "Still here", "body": "Fine.", "status": "published"}),
        )
        .await;
    assert_eq!(
        app.get(&article_uri(&after), None).await.status,
        StatusCode::OK
    );
    let registered = app
        .post(
            "/api/v1/users",
            json!({"username": "newcomer", "password": "long enough pw"}),
            None,
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    let me = app.get("/api/v1/users/me", Some(&ada.token)).await.json();
    assert_eq!(me["username"], ada.username);
    let total = app.get("/api/v1/articles", None).await.json();
    assert_eq!(total["pagination"]["total"], HOSTILE.len() + 1);
    assert_eq!(app.get("/api/v1/tags", None).await.status, StatusCode::OK);
}

async fn huge_or_malformed_paging_numbers_are_400_not_500(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Paged", "body": "Text.", "status": "published"}),
        )
        .await;
    let comments = format!("{}/comments", article_uri(&article));
    let bad = [
        "page=99999999999999999999",
        "per_page=99999999999999999999",
        "page=4294967296",
        "page=-1",
        "per_page=-5",
        "page=1e3",
        "page=1.5",
        "page=abc",
        "page=",
        "page=1&page=2",
        "page=4294967295",
        "after=1&after=2",
    ];
    for path in ["/api/v1/articles", "/api/v1/tags", comments.as_str()] {
        for query in bad {
            let response = app.get(&format!("{path}?{query}"), None).await;
            assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        }
        let last = app.get(&format!("{path}?page=100"), None).await;
        assert_eq!(last.status, StatusCode::OK, "{path}: {}", last.text());
        assert_eq!(last.json()["items"], json!([]));
    }
    for path in ["/api/v1/articles", comments.as_str()] {
        for query in [
            "after=abc",
            "after=",
            "after=1.5",
            "after=99999999999999999999",
        ] {
            let response = app.get(&format!("{path}?{query}"), None).await;
            assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        }
    }
}

async fn out_of_range_or_malformed_path_ids_are_404(app: &TestApp) {
    let ada = app.user("ada", Role::Admin).await;
    for id in [
        "99999999999999999999",
        "9223372036854775808",
        "9223372036854775807",
        "-1",
        "-9223372036854775808",
        "0",
        "abc",
        "1.5",
        "%20",
    ] {
        for uri in [
            format!("/api/v1/articles/{id}"),
            format!("/api/v1/articles/{id}/comments"),
            format!("/api/v1/comments/{id}"),
            format!("/api/v1/users/{id}"),
        ] {
            let response = app.get(&uri, None).await;
            assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
        }
        let uri = format!("/api/v1/articles/{id}");
        let response = app.delete(&uri, Some(&ada.token)).await;
        assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
        let patch = json!({"title": "New"});
        let response = app.patch(&uri, patch, Some(&ada.token)).await;
        assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
        let response = app
            .post(
                &format!("{uri}/comments"),
                json!({"body": "Hi"}),
                Some(&ada.token),
            )
            .await;
        assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
    }
}

async fn percent_encoded_junk_in_the_query_is_a_clean_answer(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    app.article(
        &ada,
        json!({"title": "Plain", "body": "Text.", "status": "published"}),
    )
    .await;
    // A search with no word at all is refused, never taken for the
    // unfiltered list.
    for query in ["q=%FF%FE", "q=%00", "q=%E2%80%AE", "q=%25%27%22"] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        let problem = assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(problem["errors"][0]["field"], "q", "{query}");
    }
    for query in [
        "q=abc%26def%3Dghi",
        "q=%E2%80%AEplain",
        "q=%zz%",
        "q=a%26b%3Dc",
        "q=%2525",
        "author=%FF",
        "unknown=%00%01&also=1",
        "%FF=%FF",
        "q",
        "&&&=&",
    ] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{query}: {}",
            response.text()
        );
        assert!(response.json()["items"].is_array(), "{query}");
    }
    let plain = app.get("/api/v1/articles?q=%50lain", None).await.json();
    assert_eq!(plain["pagination"]["total"], 1, "%50 decodes to P");
    let sorted = app.get("/api/v1/articles?sort=%2Dtitle", None).await;
    assert_eq!(sorted.status, StatusCode::OK, "{}", sorted.text());
    for query in [
        "tag=%F0%9F%92%A9",
        "tag=a%20b",
        "status=%00",
        "sort=%FF",
        "page=%31%00",
    ] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
    }
}

async fn very_long_query_values_are_400(app: &TestApp) {
    let long = "a".repeat(10_000);
    for field in ["q", "author", "tag"] {
        let response = app
            .get(&format!("/api/v1/articles?{field}={long}"), None)
            .await;
        let problem = assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(problem.to_string().len() < 2_000, "the value is not echoed");
    }
    let multibyte = "%E6%97%A5".repeat(101);
    let response = app
        .get(&format!("/api/v1/articles?q={multibyte}"), None)
        .await;
    assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
    let at_limit = "%E6%97%A5".repeat(100);
    let response = app
        .get(&format!("/api/v1/articles?q={at_limit}"), None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

async fn a_garbage_if_match_is_412(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(&ada, json!({"title": "Guarded", "body": "Text."}))
        .await;
    let uri = article_uri(&article);
    let conditional = |method: Method, value: &'static str, body: Option<Value>| {
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", ada.token))
            .header(header::IF_MATCH, value);
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        request.body(body).unwrap()
    };
    for garbage in [
        "garbage",
        "\"nope\"",
        "W/\"1\"",
        "\"0\"",
        "2",
        "\"\"",
        "\"1\"\"1\"",
        ";;;,,,",
        "' OR 1=1 --",
    ] {
        let patch = conditional(Method::PATCH, garbage, Some(json!({"title": "Changed"})));
        let response = app.send(patch).await;
        assert_problem(
            &response,
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        );
        let put = conditional(
            Method::PUT,
            garbage,
            Some(json!({"title": "Changed", "body": "New."})),
        );
        let response = app.send(put).await;
        assert_problem(
            &response,
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        );
        let response = app.send(conditional(Method::DELETE, garbage, None)).await;
        assert_problem(
            &response,
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        );
    }
    let mut opaque = conditional(Method::PATCH, "x", Some(json!({"title": "Changed"})));
    opaque.headers_mut().insert(
        header::IF_MATCH,
        HeaderValue::from_bytes(b"\"\xff\xfe\"").unwrap(),
    );
    let response = app.send(opaque).await;
    assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");

    let read = app.get(&uri, Some(&ada.token)).await.json();
    assert_eq!(read["title"], "Guarded");
    assert_eq!(read["version"], 1);

    let matching = conditional(Method::PATCH, "\"1\"", Some(json!({"title": "Changed"})));
    let response = app.send(matching).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json()["version"], 2);
}

on_both_backends!(
    unicode_round_trips_exactly,
    sql_metacharacters_are_stored_and_returned_literally,
    huge_or_malformed_paging_numbers_are_400_not_500,
    out_of_range_or_malformed_path_ids_are_404,
    percent_encoded_junk_in_the_query_is_a_clean_answer,
    very_long_query_values_are_400,
    a_garbage_if_match_is_412,
);

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
