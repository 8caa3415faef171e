//! Deleting articles: the answer, who may delete, If-Match, and the
//! comments that go with an article.

use axum::http::{Method, StatusCode, header};
use feedgate::domain::Role;
use serde_json::json;
use sqlx::{AnyConnection, Connection};

use super::{ARTICLES, id_of, path_of, send_with};
use crate::on_both_backends;
use crate::support::TestApp;

async fn deleting_an_article_answers_204_and_it_is_gone(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Doomed", "body": "Text.", "status": "published"}),
        )
        .await;
    let path = path_of(&article);

    let response = app.delete(&path, Some(&ada.token)).await;

    assert_eq!(
        response.status,
        StatusCode::NO_CONTENT,
        "{}",
        response.text()
    );
    assert!(response.body.is_empty(), "{}", response.text());
    app.get(&path, None).await.problem(StatusCode::NOT_FOUND);
    app.get(&path, Some(&ada.token))
        .await
        .problem(StatusCode::NOT_FOUND);
    assert_eq!(app.get(ARTICLES, None).await.json()["items"], json!([]));
    app.delete(&path, Some(&ada.token))
        .await
        .problem(StatusCode::NOT_FOUND);
}

async fn another_author_may_not_delete_an_article(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let rita = app.user("rita", Role::Reader).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Mine", "body": "Text.", "status": "published"}),
        )
        .await;
    let path = path_of(&article);

    for user in [&bob, &rita] {
        app.delete(&path, Some(&user.token))
            .await
            .problem(StatusCode::FORBIDDEN);
    }
    app.delete(&path, None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&path, None).await.status, StatusCode::OK);
}

async fn editors_and_admins_may_delete_anyones_article(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let ed = app.user("ed", Role::Editor).await;
    let root = app.user("root", Role::Admin).await;
    let first = app
        .article(&ada, json!({"title": "First", "body": "Text."}))
        .await;
    let second = app
        .article(
            &ada,
            json!({"title": "Second", "body": "Text.", "status": "published"}),
        )
        .await;

    for (user, article) in [(&root, &first), (&ed, &second)] {
        let response = app.delete(&path_of(article), Some(&user.token)).await;
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", user.username);
        app.get(&path_of(article), Some(&ada.token))
            .await
            .problem(StatusCode::NOT_FOUND);
    }
}

async fn a_stale_if_match_on_delete_is_a_precondition_failure(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(&ada, json!({"title": "Guarded", "body": "Text."}))
        .await;
    let path = path_of(&article);
    let old_etag = app
        .get(&path, Some(&ada.token))
        .await
        .header("etag")
        .to_owned();
    let edited = app
        .patch(&path, json!({"title": "Edited"}), Some(&ada.token))
        .await;
    let new_etag = edited.header("etag").to_owned();

    for stale in [old_etag.as_str(), "\"1\""] {
        let response = send_with(
            app,
            Method::DELETE,
            &path,
            None,
            Some(&ada),
            (header::IF_MATCH, stale),
        )
        .await;
        response.problem(StatusCode::PRECONDITION_FAILED);
    }
    assert_eq!(
        app.get(&path, Some(&ada.token)).await.status,
        StatusCode::OK
    );

    let current = send_with(
        app,
        Method::DELETE,
        &path,
        None,
        Some(&ada),
        (header::IF_MATCH, &new_etag),
    )
    .await;
    assert_eq!(current.status, StatusCode::NO_CONTENT, "{}", current.text());
}

async fn deleting_an_article_deletes_its_comments(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let rita = app.user("rita", Role::Reader).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Discussed", "body": "Text.", "status": "published"}),
        )
        .await;
    let path = path_of(&article);
    let comment = app
        .post(
            &format!("{path}/comments"),
            json!({"body": "Nice."}),
            Some(&rita.token),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.text());
    let comment_path = comment.header("location").to_owned();
    assert_eq!(app.get(&comment_path, None).await.status, StatusCode::OK);

    let response = app.delete(&path, Some(&ada.token)).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);

    app.get(&format!("{path}/comments"), None)
        .await
        .problem(StatusCode::NOT_FOUND);
    app.get(&comment_path, None)
        .await
        .problem(StatusCode::NOT_FOUND);
    let mut conn = AnyConnection::connect(app.db.url()).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE article_id = ?")
        .bind(id_of(&article))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    assert_eq!(left, 0, "no orphaned comment rows");
}

on_both_backends!(
    deleting_an_article_answers_204_and_it_is_gone,
    another_author_may_not_delete_an_article,
    editors_and_admins_may_delete_anyones_article,
    a_stale_if_match_on_delete_is_a_precondition_failure,
    deleting_an_article_deletes_its_comments,
);
