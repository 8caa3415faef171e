//! Creating articles: the answer and its fields, slugs, tags, summaries,
//! and what is refused.

use axum::http::StatusCode;
use feedgate::domain::Role;
use serde_json::{Value, json};

use super::{ARTICLES, assert_iso8601_utc, close_pool, list_uri, path_of};
use crate::on_both_backends;
use crate::support::TestApp;

async fn creating_an_article_answers_201_with_location_and_every_field(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let response = app
        .post(
            ARTICLES,
            json!({"title": "Hello, World", "body": "First post.", "summary": "Hi.", "tags": ["Rust"]}),
            Some(&ada.token),
        )
        .await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let article = response.json();
    assert_eq!(response.header("location"), path_of(&article));
    assert_eq!(response.header("cache-control"), "no-store");
    assert!(article["id"].as_i64().is_some_and(|id| id > 0), "{article}");
    assert_eq!(article["slug"], "hello-world");
    assert_eq!(article["title"], "Hello, World");
    assert_eq!(article["summary"], "Hi.");
    assert_eq!(article["body"], "First post.");
    assert_eq!(article["status"], "draft");
    assert_eq!(article["tags"], json!(["rust"]));
    assert_eq!(article["author"], json!({"id": ada.id, "username": "ada"}));
    assert_iso8601_utc(&article["created_at"]);
    assert_iso8601_utc(&article["updated_at"]);
    assert_eq!(article["published_at"], Value::Null);
    assert_eq!(article["version"], 1);
}

async fn creating_a_published_article_sets_published_at(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Out now", "body": "Text.", "status": "published"}),
        )
        .await;

    assert_eq!(article["status"], "published");
    assert_iso8601_utc(&article["published_at"]);
}

async fn tags_are_lowercased_deduplicated_and_sorted(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Tagged", "body": "Text.", "tags": [" Zig ", "RUST", "rust", "C++", "axum"]}),
        )
        .await;

    assert_eq!(article["tags"], json!(["axum", "c++", "rust", "zig"]));
    let read = app.get(&path_of(&article), Some(&ada.token)).await;
    assert_eq!(read.json()["tags"], json!(["axum", "c++", "rust", "zig"]));
}

async fn tags_that_differ_only_by_accents_stay_distinct(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let plain = app
        .article(
            &ada,
            json!({"title": "Plain", "body": "Text.", "tags": ["cafe", "strasse"]}),
        )
        .await;
    assert_eq!(plain["tags"], json!(["cafe", "strasse"]));

    let accented = app
        .article(
            &ada,
            json!({"title": "Accented", "body": "Text.", "tags": ["café", "straße"]}),
        )
        .await;

    assert_eq!(accented["tags"], json!(["café", "straße"]));
}

async fn a_missing_summary_is_derived_from_the_body(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let short = app
        .article(
            &ada,
            json!({"title": "Short", "body": "One\n\ntwo   three."}),
        )
        .await;
    assert_eq!(short["summary"], "One two three.");

    let long_body = "word ".repeat(100);
    let long = app
        .article(&ada, json!({"title": "Long", "body": long_body}))
        .await;
    let summary = long["summary"].as_str().unwrap();
    assert!(summary.ends_with('…'), "{summary}");
    assert!(summary.chars().count() <= 201, "{summary}");
    assert!(long_body.starts_with(summary.trim_end_matches('…')));
}

async fn two_articles_with_the_same_title_get_different_slugs(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let first = app
        .article(&ada, json!({"title": "Same Title", "body": "One."}))
        .await;
    let second = app
        .article(&ada, json!({"title": "Same Title", "body": "Two."}))
        .await;
    close_pool(app).await;

    assert_eq!(first["slug"], "same-title");
    let slug = second["slug"].as_str().unwrap();
    assert_ne!(slug, "same-title");
    assert!(slug.starts_with("same-title-"), "{slug}");
    assert_ne!(first["id"], second["id"]);
}

async fn an_explicit_slug_that_is_taken_is_a_conflict(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    app.article(
        &ada,
        json!({"title": "First", "body": "One.", "slug": "my-slug"}),
    )
    .await;

    let response = app
        .post(
            ARTICLES,
            json!({"title": "Second", "body": "Two.", "slug": "my-slug"}),
            Some(&ada.token),
        )
        .await;
    let list = app
        .get(&list_uri(&[("status", "draft")]), Some(&ada.token))
        .await;
    close_pool(app).await;

    response.problem(StatusCode::CONFLICT);
    assert_eq!(list.json()["pagination"]["total"], 1);
}

async fn readers_may_not_create_articles(app: &TestApp) {
    let rita = app.user("rita", Role::Reader).await;

    let response = app
        .post(
            ARTICLES,
            json!({"title": "Nope", "body": "Text."}),
            Some(&rita.token),
        )
        .await;

    response.problem(StatusCode::FORBIDDEN);
}

async fn creating_without_a_token_is_unauthorized(app: &TestApp) {
    let response = app
        .post(ARTICLES, json!({"title": "Nope", "body": "Text."}), None)
        .await;

    response.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(response.header("www-authenticate"), "Bearer");
    assert_eq!(response.header("cache-control"), "no-store");
}

async fn server_managed_fields_in_the_body_are_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    for (field, value) in [
        ("id", json!(99)),
        ("author", json!({"id": 1, "username": "admin"})),
        ("version", json!(7)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
    ] {
        let mut body = json!({"title": "Sneaky", "body": "Text."});
        body[field] = value;

        let response = app.post(ARTICLES, body, Some(&ada.token)).await;

        let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{field}: {problem}"
        );
    }
    let list = app
        .get(&list_uri(&[("status", "draft")]), Some(&ada.token))
        .await;
    assert_eq!(list.json()["pagination"]["total"], 0);
}

async fn an_unknown_status_is_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;

    let response = app
        .post(
            ARTICLES,
            json!({"title": "Odd", "body": "Text.", "status": "archived"}),
            Some(&ada.token),
        )
        .await;

    response.problem(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_blank_title_is_refused_with_a_field_error(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;

    let response = app
        .post(
            ARTICLES,
            json!({"title": "   ", "body": "Text."}),
            Some(&ada.token),
        )
        .await;

    let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let errors = problem["errors"].as_array().expect("field errors");
    assert!(errors.iter().any(|e| e["field"] == "title"), "{problem}");
    assert!(errors.iter().all(|e| e["field"] != "body"), "{problem}");
}

async fn more_than_ten_tags_are_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let tags: Vec<String> = (1..=11).map(|n| format!("tag{n}")).collect();

    let response = app
        .post(
            ARTICLES,
            json!({"title": "Busy", "body": "Text.", "tags": tags}),
            Some(&ada.token),
        )
        .await;

    let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "tags", "{problem}");

    let ten = &tags[..10];
    let ok = app
        .article(&ada, json!({"title": "Full", "body": "Text.", "tags": ten}))
        .await;
    assert_eq!(ok["tags"].as_array().unwrap().len(), 10);
}

on_both_backends!(
    creating_an_article_answers_201_with_location_and_every_field,
    creating_a_published_article_sets_published_at,
    tags_are_lowercased_deduplicated_and_sorted,
    tags_that_differ_only_by_accents_stay_distinct,
    a_missing_summary_is_derived_from_the_body,
    two_articles_with_the_same_title_get_different_slugs,
    an_explicit_slug_that_is_taken_is_a_conflict,
    readers_may_not_create_articles,
    creating_without_a_token_is_unauthorized,
    server_managed_fields_in_the_body_are_refused,
    an_unknown_status_is_refused,
    a_blank_title_is_refused_with_a_field_error,
    more_than_ten_tags_are_refused,
);
