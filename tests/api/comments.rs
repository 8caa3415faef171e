//! Tests for comments.

use axum::http::StatusCode;
use feedgate::domain::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{TestApp, TestUser};

async fn published(app: &TestApp, author: &TestUser) -> i64 {
    let article = app
        .article(
            author,
            json!({"title": "Open to all", "body": "Text.", "status": "published"}),
        )
        .await;
    article["id"].as_i64().unwrap()
}

/// Comments through the API and returns the created comment.
async fn comment(app: &TestApp, user: &TestUser, article_id: i64, body: &str) -> Value {
    let uri = format!("/api/v1/articles/{article_id}/comments");
    let response = app
        .post(&uri, json!({"body": body}), Some(&user.token))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    response.json()
}

async fn a_signed_in_user_comments_and_gets_201_with_location(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let rita = app.user("rita", Role::Reader).await;
    let article_id = published(app, &ada).await;

    let response = app
        .post(
            &format!("/api/v1/articles/{article_id}/comments"),
            json!({"body": "Nice post."}),
            Some(&rita.token),
        )
        .await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert_eq!(response.header("cache-control"), "no-store");
    let comment = response.json();
    let id = comment["id"].as_i64().expect("a numeric id");
    assert_eq!(
        response.header("location"),
        format!("/api/v1/comments/{id}")
    );
    assert_eq!(comment["article_id"], article_id);
    assert_eq!(
        comment["author"],
        json!({"id": rita.id, "username": "rita"})
    );
    assert_eq!(comment["body"], "Nice post.");
    assert!(comment["created_at"].as_str().unwrap().ends_with('Z'));
}

async fn commenting_without_a_token_is_401(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article_id = published(app, &ada).await;
    let uri = format!("/api/v1/articles/{article_id}/comments");

    let response = app.post(&uri, json!({"body": "Anonymous."}), None).await;

    response.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(response.header("www-authenticate"), "Bearer");
    assert_eq!(app.get(&uri, None).await.json()["pagination"]["total"], 0);
}

async fn a_blank_comment_is_422(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article_id = published(app, &ada).await;
    let uri = format!("/api/v1/articles/{article_id}/comments");

    for body in ["", "   \n\t "] {
        let response = app
            .post(&uri, json!({"body": body}), Some(&ada.token))
            .await;
        let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    }
    assert_eq!(app.get(&uri, None).await.json()["pagination"]["total"], 0);
}

async fn commenting_on_an_unknown_article_is_404(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article_id = published(app, &ada).await;

    let response = app
        .post(
            &format!("/api/v1/articles/{}/comments", article_id + 1000),
            json!({"body": "Hello?"}),
            Some(&ada.token),
        )
        .await;

    response.problem(StatusCode::NOT_FOUND);
}

async fn commenting_on_someone_elses_draft_is_404(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let draft = app
        .article(&ada, json!({"title": "Secret", "body": "Shh."}))
        .await;
    let uri = format!("/api/v1/articles/{}/comments", draft["id"]);

    let response = app
        .post(&uri, json!({"body": "Found it."}), Some(&bob.token))
        .await;

    response.problem(StatusCode::NOT_FOUND);
    let own = app
        .post(&uri, json!({"body": "Note to self."}), Some(&ada.token))
        .await;
    assert_eq!(
        own.status,
        StatusCode::CREATED,
        "the author may comment on their draft"
    );
}

async fn comments_are_listed_oldest_first_one_page_at_a_time(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Reader).await;
    let article_id = published(app, &ada).await;
    let first = comment(app, &bob, article_id, "First!").await;
    let second = comment(app, &ada, article_id, "Thanks.").await;
    let third = comment(app, &bob, article_id, "Third.").await;
    let uri = format!("/api/v1/articles/{article_id}/comments");

    let page_one = app.get(&format!("{uri}?per_page=2"), None).await;

    assert_eq!(page_one.status, StatusCode::OK, "{}", page_one.text());
    let list = page_one.json();
    let ids: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, [&first["id"], &second["id"]]);
    assert_eq!(list["items"][0]["body"], "First!");
    assert_eq!(
        list["pagination"],
        json!({"page": 1, "per_page": 2, "total": 3, "pages": 2})
    );
    assert_eq!(list["links"]["self"], format!("{uri}?page=1&per_page=2"));
    let next = format!("{uri}?after={}&per_page=2", second["id"]);
    assert_eq!(list["links"]["next"], next, "the next page goes by cursor");
    assert_eq!(list["links"]["prev"], Value::Null);

    for page_two in [format!("{uri}?page=2&per_page=2"), next] {
        let page_two = app.get(&page_two, None).await.json();
        assert_eq!(page_two["items"].as_array().unwrap().len(), 1);
        assert_eq!(page_two["items"][0]["id"], third["id"]);
        assert_eq!(page_two["links"]["next"], Value::Null);
    }
    let by_number = app
        .get(&format!("{uri}?page=2&per_page=2"), None)
        .await
        .json();
    assert_eq!(
        by_number["links"]["prev"],
        format!("{uri}?page=1&per_page=2")
    );
}

async fn a_comment_cursor_must_be_a_comment_of_the_article(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let first = published(app, &ada).await;
    let other = published(app, &ada).await;
    let theirs = comment(app, &ada, other, "Elsewhere.").await;
    let uri = format!("/api/v1/articles/{first}/comments");

    for after in [theirs["id"].to_string(), "999999".into()] {
        let response = app.get(&format!("{uri}?after={after}"), None).await;
        let problem = response.problem(StatusCode::NOT_FOUND);
        assert_eq!(problem["errors"][0]["field"], "after", "{problem}");
    }
}

async fn listing_the_comments_of_an_unknown_article_is_404(app: &TestApp) {
    let response = app.get("/api/v1/articles/4242/comments", None).await;

    response.problem(StatusCode::NOT_FOUND);
}

async fn a_comment_is_read_by_id(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article_id = published(app, &ada).await;
    let created = comment(app, &ada, article_id, "Worth reading.").await;

    let response = app
        .get(&format!("/api/v1/comments/{}", created["id"]), None)
        .await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json(), created);
    assert!(response.header("etag").starts_with('"'));
    assert!(response.header("cache-control").starts_with("public"));
}

async fn a_comment_on_a_draft_is_hidden_from_outsiders(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let draft = app
        .article(&ada, json!({"title": "Secret", "body": "Shh."}))
        .await;
    let note = comment(app, &ada, draft["id"].as_i64().unwrap(), "Private note.").await;
    let uri = format!("/api/v1/comments/{}", note["id"]);

    app.get(&uri, None).await.problem(StatusCode::NOT_FOUND);
    app.get(&uri, Some(&bob.token))
        .await
        .problem(StatusCode::NOT_FOUND);
    let list = format!("/api/v1/articles/{}/comments", draft["id"]);
    app.get(&list, Some(&bob.token))
        .await
        .problem(StatusCode::NOT_FOUND);

    let own = app.get(&uri, Some(&ada.token)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.header("cache-control"), "private, no-store");
}

async fn deleting_a_comment_on_someone_elses_draft_is_404(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let draft = app
        .article(&ada, json!({"title": "Secret", "body": "Shh."}))
        .await;
    let note = comment(app, &ada, draft["id"].as_i64().unwrap(), "Private note.").await;
    let uri = format!("/api/v1/comments/{}", note["id"]);

    let response = app.delete(&uri, Some(&bob.token)).await;

    response.problem(StatusCode::NOT_FOUND);
    assert_eq!(app.get(&uri, Some(&ada.token)).await.status, StatusCode::OK);
}

async fn the_author_deletes_their_comment_and_it_is_gone(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Reader).await;
    let article_id = published(app, &ada).await;
    let created = comment(app, &bob, article_id, "Oops.").await;
    let uri = format!("/api/v1/comments/{}", created["id"]);

    let response = app.delete(&uri, Some(&bob.token)).await;

    assert_eq!(
        response.status,
        StatusCode::NO_CONTENT,
        "{}",
        response.text()
    );
    assert!(response.body.is_empty());
    app.get(&uri, None).await.problem(StatusCode::NOT_FOUND);
    app.delete(&uri, Some(&bob.token))
        .await
        .problem(StatusCode::NOT_FOUND);
}

async fn deleting_another_users_comment_is_403(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Reader).await;
    let article_id = published(app, &ada).await;
    let created = comment(app, &bob, article_id, "Mine.").await;
    let uri = format!("/api/v1/comments/{}", created["id"]);

    let response = app.delete(&uri, Some(&ada.token)).await;

    response.problem(StatusCode::FORBIDDEN);
    assert_eq!(app.get(&uri, None).await.status, StatusCode::OK);
}

async fn an_editor_may_delete_anyones_comment(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let editor = app.user("ed", Role::Editor).await;
    let article_id = published(app, &ada).await;
    let created = comment(app, &ada, article_id, "Spam.").await;
    let uri = format!("/api/v1/comments/{}", created["id"]);

    let response = app.delete(&uri, Some(&editor.token)).await;

    assert_eq!(
        response.status,
        StatusCode::NO_CONTENT,
        "{}",
        response.text()
    );
    app.get(&uri, None).await.problem(StatusCode::NOT_FOUND);
}

async fn deleting_an_article_removes_its_comments(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Reader).await;
    let article_id = published(app, &ada).await;
    let kept_article = published(app, &ada).await;
    let doomed = comment(app, &bob, article_id, "Going away.").await;
    let kept = comment(app, &bob, kept_article, "Staying.").await;

    let response = app
        .delete(&format!("/api/v1/articles/{article_id}"), Some(&ada.token))
        .await;

    assert_eq!(
        response.status,
        StatusCode::NO_CONTENT,
        "{}",
        response.text()
    );
    let gone = app
        .get(&format!("/api/v1/comments/{}", doomed["id"]), None)
        .await;
    gone.problem(StatusCode::NOT_FOUND);
    let list = format!("/api/v1/articles/{article_id}/comments");
    app.get(&list, None).await.problem(StatusCode::NOT_FOUND);
    let other = app
        .get(&format!("/api/v1/comments/{}", kept["id"]), None)
        .await;
    assert_eq!(other.status, StatusCode::OK);
    let stored = app
        .state
        .store
        .find_comment(doomed["id"].as_i64().unwrap())
        .await;
    assert!(stored.unwrap().is_none(), "the row itself is deleted");
}

on_both_backends!(
    a_signed_in_user_comments_and_gets_201_with_location,
    commenting_without_a_token_is_401,
    a_blank_comment_is_422,
    commenting_on_an_unknown_article_is_404,
    commenting_on_someone_elses_draft_is_404,
    comments_are_listed_oldest_first_one_page_at_a_time,
    a_comment_cursor_must_be_a_comment_of_the_article,
    listing_the_comments_of_an_unknown_article_is_404,
    a_comment_is_read_by_id,
    a_comment_on_a_draft_is_hidden_from_outsiders,
    deleting_a_comment_on_someone_elses_draft_is_404,
    the_author_deletes_their_comment_and_it_is_gone,
    deleting_another_users_comment_is_403,
    an_editor_may_delete_anyones_comment,
    deleting_an_article_removes_its_comments,
);

/// A comment is shown only with its article; if the database cannot say
/// whether the article is visible, that is an outage (503), not "no such
/// comment".
#[tokio::test]
async fn a_database_outage_while_reading_a_comment_is_503_not_404() {
    let proxy = crate::support::mysql_proxy().await;
    let app = TestApp::with_settings(crate::support::Backend::MySql, |s| {
        s.database.url = feedgate::config::Secret::new(proxy.rewrite(s.database.url.expose()));
        s.database.acquire_timeout_ms = 500;
    })
    .await;
    let ada = app.user("ada", Role::Author).await;
    let article = published(&app, &ada).await;
    let id = comment(&app, &ada, article, "First.").await["id"]
        .as_i64()
        .unwrap();
    let uri = format!("/api/v1/comments/{id}");
    assert_eq!(app.get(&uri, None).await.status, StatusCode::OK);
    // The comment stays cached; the article's copy is made stale.
    let patched = app
        .patch(
            &format!("/api/v1/articles/{article}"),
            json!({"title": "Edited"}),
            Some(&ada.token),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());

    proxy.cut();
    let problem = app
        .get(&uri, None)
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["code"], "unavailable", "{problem}");
    let deleted = app.delete(&uri, Some(&ada.token)).await;
    deleted.problem(StatusCode::SERVICE_UNAVAILABLE);
}
