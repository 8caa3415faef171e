//! Tests for tags.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use feedgate::domain::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{TestApp, TestUser};

/// Creates an article with these tags and status; returns its id.
async fn tagged(app: &TestApp, author: &TestUser, status: &str, tags: &[&str]) -> i64 {
    let body = json!({"title": "Tagged", "body": "Text.", "status": status, "tags": tags});
    app.article(author, body).await["id"].as_i64().unwrap()
}

async fn get_ok(app: &TestApp, uri: &str) -> Value {
    let response = app.get(uri, None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

async fn tags_count_published_articles_only(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    tagged(app, &ada, "published", &["rust", "web"]).await;
    let second = tagged(app, &ada, "published", &["rust"]).await;
    tagged(app, &ada, "draft", &["rust", "web"]).await;

    let list = get_ok(app, "/api/v1/tags").await;

    assert_eq!(
        list["items"],
        json!([{"name": "rust", "articles": 2}, {"name": "web", "articles": 1}])
    );
    let unpublish = app
        .patch(
            &format!("/api/v1/articles/{second}"),
            json!({"status": "draft"}),
            Some(&ada.token),
        )
        .await;
    assert_eq!(unpublish.status, StatusCode::OK, "{}", unpublish.text());
    let after = get_ok(app, "/api/v1/tags").await;
    assert_eq!(
        after["items"],
        json!([{"name": "rust", "articles": 1}, {"name": "web", "articles": 1}])
    );
}

async fn tags_only_on_drafts_are_not_listed(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    tagged(app, &ada, "published", &["rust"]).await;
    tagged(app, &ada, "draft", &["secret-project"]).await;

    let list = get_ok(app, "/api/v1/tags").await;

    assert_eq!(list["items"], json!([{"name": "rust", "articles": 1}]));
    assert_eq!(list["pagination"]["total"], 1);
    let editor = app.user("ed", Role::Editor).await;
    let as_editor = app.get("/api/v1/tags", Some(&editor.token)).await.json();
    assert_eq!(as_editor["items"], list["items"], "not even for moderators");
}

async fn tags_are_ordered_most_used_first_then_by_name(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    tagged(app, &ada, "published", &["zig", "go", "rust"]).await;
    tagged(app, &ada, "published", &["zig", "c"]).await;
    tagged(app, &ada, "published", &["zig", "go"]).await;

    let list = get_ok(app, "/api/v1/tags").await;

    assert_eq!(
        list["items"],
        json!([
            {"name": "zig", "articles": 3},
            {"name": "go", "articles": 2},
            {"name": "c", "articles": 1},
            {"name": "rust", "articles": 1},
        ])
    );
}

async fn tags_are_paginated_with_metadata_and_links(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    tagged(app, &ada, "published", &["a", "b", "c"]).await;
    tagged(app, &ada, "published", &["a", "b"]).await;
    tagged(app, &ada, "published", &["a"]).await;

    let second = get_ok(app, "/api/v1/tags?page=2&per_page=1").await;

    assert_eq!(second["items"], json!([{"name": "b", "articles": 2}]));
    assert_eq!(
        second["pagination"],
        json!({"page": 2, "per_page": 1, "total": 3, "pages": 3})
    );
    assert_eq!(
        second["links"],
        json!({
            "self": "/api/v1/tags?page=2&per_page=1",
            "next": "/api/v1/tags?after=b&per_page=1",
            "prev": "/api/v1/tags?page=1&per_page=1",
        })
    );
    let third = get_ok(app, "/api/v1/tags?after=b&per_page=1").await;
    assert_eq!(third["items"], json!([{"name": "c", "articles": 1}]));
    assert_eq!(third["pagination"]["page"], Value::Null);
    assert_eq!(third["links"]["next"], Value::Null);
    let empty = get_ok(app, "/api/v1/tags?after=&per_page=1").await;
    assert_eq!(
        empty["items"],
        json!([{"name": "a", "articles": 3}]),
        "empty is none"
    );
    let unknown = app.get("/api/v1/tags?after=nope", None).await;
    assert_eq!(
        unknown.problem(StatusCode::NOT_FOUND)["errors"][0]["field"],
        "after"
    );
    let first = get_ok(app, "/api/v1/tags").await;
    assert_eq!(
        first["pagination"],
        json!({"page": 1, "per_page": 20, "total": 3, "pages": 1})
    );
    let zero = app.get("/api/v1/tags?page=0", None).await;
    assert_eq!(
        zero.problem(StatusCode::BAD_REQUEST)["errors"][0]["field"],
        "page"
    );
}

async fn the_tag_list_answers_304_to_its_etag_until_it_changes(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    tagged(app, &ada, "published", &["rust"]).await;
    let first = app.get("/api/v1/tags", None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.header("cache-control").starts_with("public"));
    let etag = first.header("etag").to_owned();

    let conditional = |tag: String| {
        Request::get("/api/v1/tags")
            .header(header::IF_NONE_MATCH, tag)
            .body(Body::empty())
            .unwrap()
    };
    let unchanged = app.send(conditional(etag.clone())).await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert!(unchanged.body.is_empty());
    assert_eq!(unchanged.header("etag"), etag);
    let weak = app.send(conditional(format!("W/{etag}"))).await;
    assert_eq!(weak.status, StatusCode::NOT_MODIFIED);

    tagged(app, &ada, "published", &["web"]).await;
    let changed = app.send(conditional(etag.clone())).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), etag);
    assert_eq!(changed.json()["pagination"]["total"], 2);
}

async fn mixed_case_tags_are_normalised_when_articles_are_written(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let created = app
        .article(
            &ada,
            json!({"title": "Case", "body": "Text.", "status": "published",
                   "tags": ["RuSt", " rust ", "Web", "C++"]}),
        )
        .await;
    assert_eq!(created["tags"], json!(["c++", "rust", "web"]));
    tagged(app, &ada, "published", &["RUST"]).await;

    let list = get_ok(app, "/api/v1/tags").await;

    assert_eq!(
        list["items"],
        json!([
            {"name": "rust", "articles": 2},
            {"name": "c++", "articles": 1},
            {"name": "web", "articles": 1},
        ])
    );
    let filtered = get_ok(app, "/api/v1/articles?tag=Rust").await;
    assert_eq!(filtered["pagination"]["total"], 2);
}

on_both_backends!(
    tags_count_published_articles_only,
    tags_only_on_drafts_are_not_listed,
    tags_are_ordered_most_used_first_then_by_name,
    tags_are_paginated_with_metadata_and_links,
    the_tag_list_answers_304_to_its_etag_until_it_changes,
    mixed_case_tags_are_normalised_when_articles_are_written,
);
