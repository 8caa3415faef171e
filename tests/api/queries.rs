//! What list queries and content negotiation accept, as the README and the
//! OpenAPI document say: a search needs a word, one starting point per
//! page, `per_page` from 1 to 100, an unknown cursor is a 404, and
//! `Accept-Encoding` q-values choose the coding.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use feedgate::domain::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{TestApp, TestResponse};

/// An author with two published articles and a comment on the first.
/// Returns the list URIs to check: articles, tags and the comments.
async fn lists(app: &TestApp) -> [String; 3] {
    let ada = app.user("ada", Role::Author).await;
    let mut first = Value::Null;
    for title in ["Plain words", "More plain words"] {
        let body =
            json!({"title": title, "body": "Text.", "status": "published", "tags": ["rust"]});
        let article = app.article(&ada, body).await;
        if first.is_null() {
            first = article;
        }
    }
    let comments = format!("/api/v1/articles/{}/comments", first["id"]);
    let created = app
        .post(&comments, json!({"body": "Nice."}), Some(&ada.token))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    [
        "/api/v1/articles".to_owned(),
        "/api/v1/tags".to_owned(),
        comments,
    ]
}

/// A 400 naming `field` with `code`.
fn assert_bad_query(response: &TestResponse, field: &str, code: &str, query: &str) {
    let problem = response.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "bad_request", "{query}: {problem}");
    assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    assert_eq!(problem["errors"][0]["code"], code, "{query}: {problem}");
}

async fn a_search_without_any_word_is_400_and_an_empty_one_is_no_search(app: &TestApp) {
    lists(app).await;
    for query in [
        "q=!!!",
        "q=%FF%FE",
        "q=%00",
        "q=%E2%80%AE",
        "q=%25%27%22",
        "q=--+..",
    ] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        assert_bad_query(&response, "q", "no_words", query);
    }
    for query in ["q=", "q=%20%20", "q"] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{query}: {}",
            response.text()
        );
        assert_eq!(response.json()["pagination"]["total"], 2, "{query}");
    }
    let found = app.get("/api/v1/articles?q=more!!!", None).await;
    assert_eq!(found.json()["pagination"]["total"], 1);
}

async fn page_and_after_together_are_400(app: &TestApp) {
    for list in lists(app).await {
        let after = if list.ends_with("tags") { "rust" } else { "1" };
        for query in [
            format!("page=1&after={after}"),
            format!("after={after}&page=2&per_page=1"),
        ] {
            let uri = format!("{list}?{query}");
            let response = app.get(&uri, None).await;
            assert_bad_query(&response, "page", "exclusive", &uri);
        }
        let alone = app.get(&format!("{list}?page=1&per_page=1"), None).await;
        assert_eq!(alone.status, StatusCode::OK, "{list}: {}", alone.text());
    }
}

async fn per_page_outside_1_to_100_is_400(app: &TestApp) {
    for list in lists(app).await {
        for per_page in ["0", "101", "1000", "4294967295"] {
            let uri = format!("{list}?per_page={per_page}");
            let response = app.get(&uri, None).await;
            assert_bad_query(&response, "per_page", "range", &uri);
        }
        for per_page in [1, 100] {
            let response = app.get(&format!("{list}?per_page={per_page}"), None).await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{list}: {}",
                response.text()
            );
            assert_eq!(response.json()["pagination"]["per_page"], per_page);
        }
    }
}

async fn an_unknown_cursor_is_404_unknown_cursor_on_every_list(app: &TestApp) {
    for list in lists(app).await {
        let after = if list.ends_with("tags") {
            "zzz"
        } else {
            "999999"
        };
        let uri = format!("{list}?after={after}");
        let problem = app.get(&uri, None).await.problem(StatusCode::NOT_FOUND);
        assert_eq!(problem["code"], "unknown_cursor", "{uri}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "after", "{uri}: {problem}");
    }
}

async fn accept_encoding_q_values_choose_the_coding(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let body = json!({"title": "Long", "body": "words ".repeat(2000), "status": "published"});
    let article = app.article(&ada, body).await;
    let uri = format!("/api/v1/articles/{}", article["id"]);
    for (accept, coding) in [
        ("gzip;q=0.001, br;q=0.0005", Some("gzip")),
        ("br;q=0.5, gzip;q=0.9", Some("gzip")),
        ("gzip, br", Some("br")),
        ("br;q=0, gzip;q=0", None),
        ("identity, gzip;q=0.5", None),
        ("*;q=0.1, br;q=0", Some("gzip")),
    ] {
        let request = Request::get(&uri)
            .header(header::ACCEPT_ENCODING, accept)
            .body(Body::empty())
            .unwrap();
        let response = app.send(request).await;
        assert_eq!(response.status, StatusCode::OK, "{accept}");
        let sent = response
            .headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap());
        assert_eq!(sent, coding, "{accept}");
    }
}

/// `author` takes any spelling with the name's canonical form, on both
/// backends alike.
async fn an_author_filter_takes_any_spelling_of_the_name(app: &TestApp) {
    lists(app).await;
    for author in ["ada", "ADA", "%EF%BD%81da", "ada%00", "%20ada%C2%A0"] {
        let uri = format!("/api/v1/articles?author={author}");
        let response = app.get(&uri, None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{uri}: {}",
            response.text()
        );
        assert_eq!(response.json()["pagination"]["total"], 2, "{uri}");
    }
    let nobody = app.get("/api/v1/articles?author=ad", None).await.json();
    assert_eq!(nobody["pagination"]["total"], 0);
}

on_both_backends!(
    an_author_filter_takes_any_spelling_of_the_name,
    a_search_without_any_word_is_400_and_an_empty_one_is_no_search,
    page_and_after_together_are_400,
    per_page_outside_1_to_100_is_400,
    an_unknown_cursor_is_404_unknown_cursor_on_every_list,
    accept_encoding_q_values_choose_the_coding,
);
