use axum::http::StatusCode;
use feedgate::domain::Role;
use serde_json::json;

use crate::on_both_backends;
use crate::support::TestApp;

async fn an_author_publishes_and_anyone_reads_it(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let created = app
        .article(&ada, json!({"title": "Hello, World", "body": "First post.", "status": "published", "tags": ["Rust"]}))
        .await;
    assert_eq!(created["slug"], "hello-world");
    assert_eq!(created["tags"], json!(["rust"]));

    let read = app
        .get(&format!("/api/v1/articles/{}", created["id"]), None)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json()["body"], "First post.");
}

on_both_backends!(an_author_publishes_and_anyone_reads_it);
