//! Reading one article: its body and validators, 304s, 404s, and who may
//! see a draft.

use axum::http::{Method, StatusCode, header};
use feedgate::domain::Role;
use serde_json::json;

use super::{path_of, send_with};
use crate::on_both_backends;
use crate::support::TestApp;

async fn reading_an_article_returns_its_body_and_an_etag(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let created = app
        .article(
            &ada,
            json!({"title": "Readable", "body": "The body.", "status": "published"}),
        )
        .await;

    let response = app.get(&path_of(&created), None).await;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), "application/json");
    let etag = response.header("etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(!response.header("last-modified").is_empty());
    assert_eq!(response.json(), created);
}

async fn if_none_match_with_the_etag_answers_an_empty_304(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let created = app
        .article(
            &ada,
            json!({"title": "Cached", "body": "Text.", "status": "published"}),
        )
        .await;
    let path = path_of(&created);
    let etag = app.get(&path, None).await.header("etag").to_owned();

    for tag in [etag.clone(), format!("W/{etag}")] {
        let response = send_with(
            app,
            Method::GET,
            &path,
            None,
            None,
            (header::IF_NONE_MATCH, &tag),
        )
        .await;
        assert_eq!(response.status, StatusCode::NOT_MODIFIED, "{tag}");
        assert!(response.body.is_empty(), "{tag}: {}", response.text());
        assert_eq!(response.header("etag"), etag);
    }

    let other = send_with(
        app,
        Method::GET,
        &path,
        None,
        None,
        (header::IF_NONE_MATCH, "\"something-else\""),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.json()["id"], created["id"]);
}

async fn an_unknown_or_malformed_id_is_a_404_problem(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    for uri in [
        "/api/v1/articles/999999",
        "/api/v1/articles/abc",
        "/api/v1/articles/1.5",
    ] {
        let response = app.get(uri, None).await;
        let problem = response.problem(StatusCode::NOT_FOUND);
        assert_eq!(problem["code"], "not_found", "{uri}: {problem}");
        let as_author = app.get(uri, Some(&ada.token)).await;
        as_author.problem(StatusCode::NOT_FOUND);
    }
}

async fn a_draft_is_visible_to_its_author_editors_and_admins_privately(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let ed = app.user("ed", Role::Editor).await;
    let root = app.user("root", Role::Admin).await;
    let draft = app
        .article(&ada, json!({"title": "Secret", "body": "Not yet."}))
        .await;

    for user in [&ada, &ed, &root] {
        let response = app.get(&path_of(&draft), Some(&user.token)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", user.username);
        assert_eq!(response.json()["body"], "Not yet.");
        assert_eq!(response.header("cache-control"), "private, no-store");
    }
}

async fn a_draft_is_hidden_from_anonymous_readers_and_other_authors(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let rita = app.user("rita", Role::Reader).await;
    let draft = app
        .article(&ada, json!({"title": "Secret", "body": "Not yet."}))
        .await;
    let path = path_of(&draft);

    let anonymous = app.get(&path, None).await;
    let anonymous_problem = anonymous.problem(StatusCode::NOT_FOUND);
    for user in [&bob, &rita] {
        let response = app.get(&path, Some(&user.token)).await;
        let problem = response.problem(StatusCode::NOT_FOUND);
        assert!(!response.text().contains("Not yet."));
        assert_eq!(problem, anonymous_problem, "same answer as a missing id");
    }
    let missing = app.get("/api/v1/articles/999999", None).await;
    assert_eq!(missing.json(), anonymous_problem);
}

async fn a_published_article_is_publicly_cacheable(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Public", "body": "Text.", "status": "published"}),
        )
        .await;

    let response = app.get(&path_of(&article), None).await;

    let cache_control = response.header("cache-control");
    assert!(cache_control.starts_with("public"), "{cache_control}");
    assert!(cache_control.contains("s-maxage="), "{cache_control}");
}

on_both_backends!(
    reading_an_article_returns_its_body_and_an_etag,
    if_none_match_with_the_etag_answers_an_empty_304,
    an_unknown_or_malformed_id_is_a_404_problem,
    a_draft_is_visible_to_its_author_editors_and_admins_privately,
    a_draft_is_hidden_from_anonymous_readers_and_other_authors,
    a_published_article_is_publicly_cacheable,
);
