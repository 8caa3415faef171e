//! Tests for articles: create, read, list, update and delete.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection};

use crate::support::{TestApp, TestResponse, TestUser};

const ARTICLES: &str = "/api/v1/articles";

fn path_of(article: &Value) -> String {
    format!("{ARTICLES}/{}", article["id"])
}

fn ids(list: &Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .map(|item| item["id"].as_i64().expect("an item has an id"))
        .collect()
}

fn id_of(article: &Value) -> i64 {
    article["id"].as_i64().expect("an article has an id")
}

/// `/api/v1/articles?<params>`, percent-encoded.
fn list_uri(params: &[(&str, &str)]) -> String {
    format!(
        "{ARTICLES}?{}",
        serde_urlencoded::to_string(params).expect("params encode")
    )
}

fn assert_iso8601_utc(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(text.ends_with('Z'), "{text}");
    assert_eq!(text.len(), "2024-05-20T12:34:56Z".len(), "{text}");
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|err| panic!("{text}: {err}"));
}

/// A request with one extra header (`If-Match`, `If-None-Match`).
async fn send_with(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<Value>,
    user: Option<&TestUser>,
    extra: (header::HeaderName, &str),
) -> TestResponse {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(extra.0, extra.1);
    if let Some(user) = user {
        request = request.header(header::AUTHORIZATION, format!("Bearer {}", user.token));
    }
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    app.send(request.body(body).unwrap()).await
}

/// Sets an article's times (epoch milliseconds) directly in the database.
async fn set_times(app: &TestApp, id: i64, created: i64, updated: i64, published: Option<i64>) {
    let mut conn = AnyConnection::connect(app.db.url())
        .await
        .expect("the test database accepts connections");
    sqlx::query(
        "UPDATE articles SET created_at = ?, updated_at = ?, published_at = ? WHERE id = ?",
    )
    .bind(created)
    .bind(updated)
    .bind(published)
    .bind(id)
    .execute(&mut conn)
    .await
    .expect("the times are set");
    // The feeds carry the sort keys too (a draft's publication time is 0).
    sqlx::query(
        "UPDATE feed_entries SET created_at = ?, updated_at = ?, published_at = ? \
         WHERE article_id = ?",
    )
    .bind(created)
    .bind(updated)
    .bind(published.unwrap_or(0))
    .bind(id)
    .execute(&mut conn)
    .await
    .expect("the feeds' times are set");
    conn.close().await.ok();
}

/// Publishes `count` articles by `author`, oldest first, titled `<prefix> <n>`.
async fn publish_many(app: &TestApp, author: &TestUser, prefix: &str, count: usize) -> Vec<i64> {
    let mut created = Vec::with_capacity(count);
    for n in 1..=count {
        let article = app
            .article(
                author,
                json!({"title": format!("{prefix} {n}"), "body": "Text.", "status": "published"}),
            )
            .await;
        created.push(id_of(&article));
    }
    created
}

/// Closes the pool, and with it any transaction a failed write left waiting
/// for its rollback to be flushed (sqlx flushes it from a spawned task).
/// Without this the harness's `DROP DATABASE` on MariaDB can wait forever on
/// that transaction's metadata lock, since the drop blocks the runtime.
async fn close_pool(app: &TestApp) {
    app.state.store.close().await;
}

mod create;
mod delete;
mod edit;
mod lists;
mod read;
