//! Invalidation on writes on one instance: a patch, a put, a delete, a new
//! article or a comment shows at once in the article, its lists and the tags.

use axum::http::StatusCode;
use feedgate::domain::Role;
use serde_json::json;

use super::{ARTICLES, article_uri, publish, retitle, tag_counts, title, titles};
use crate::on_both_backends;
use crate::support::TestApp;

async fn a_patch_shows_at_once_in_the_article_every_list_and_the_tags(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let token = Some(ada.token.as_str());
    let id = publish(app, &ada, "Before", &["rust"]).await;
    let uri = article_uri(id);
    let (all, by_author) = (ARTICLES.to_owned(), format!("{ARTICLES}?author=ada"));
    let (rust, elixir) = (
        format!("{ARTICLES}?tag=rust"),
        format!("{ARTICLES}?tag=elixir"),
    );
    // Warm everything.
    assert_eq!(title(&app.get(&uri, None).await), "Before");
    for list in [&all, &by_author, &rust] {
        assert_eq!(titles(&app.get(list, None).await), ["Before"], "{list}");
    }
    assert!(titles(&app.get(&elixir, None).await).is_empty());
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "rust", "articles": 1}])
    );

    let patched = app
        .patch(&uri, json!({"title": "After", "tags": ["elixir"]}), token)
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());

    assert_eq!(title(&app.get(&uri, None).await), "After");
    for list in [&all, &by_author, &elixir] {
        assert_eq!(titles(&app.get(list, None).await), ["After"], "{list}");
    }
    assert!(titles(&app.get(&rust, None).await).is_empty(), "{rust}");
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "elixir", "articles": 1}])
    );
}

async fn a_put_and_a_delete_show_at_once_in_the_article_and_the_lists(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let token = Some(ada.token.as_str());
    let id = publish(app, &ada, "Before", &["rust"]).await;
    let uri = article_uri(id);
    let comments = format!("{uri}/comments");
    let lists = [
        ARTICLES.to_owned(),
        format!("{ARTICLES}?author=ada"),
        format!("{ARTICLES}?tag=rust"),
    ];
    assert_eq!(title(&app.get(&uri, None).await), "Before");
    for list in &lists {
        assert_eq!(titles(&app.get(list, None).await), ["Before"], "{list}");
    }
    assert_eq!(app.get(&comments, None).await.status, StatusCode::OK);

    let replaced = app
        .put(
            &uri,
            json!({"title": "Replaced", "body": "All new.", "status": "published"}),
            token,
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text());
    let read = app.get(&uri, None).await;
    assert_eq!(title(&read), "Replaced");
    assert_eq!(read.json()["tags"], json!([]));
    assert_eq!(titles(&app.get(&lists[0], None).await), ["Replaced"]);
    assert_eq!(titles(&app.get(&lists[1], None).await), ["Replaced"]);
    assert!(titles(&app.get(&lists[2], None).await).is_empty());
    assert_eq!(tag_counts(&app.get("/api/v1/tags", None).await), json!([]));

    let deleted = app.delete(&uri, token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    app.get(&uri, None).await.problem(StatusCode::NOT_FOUND);
    app.get(&comments, None)
        .await
        .problem(StatusCode::NOT_FOUND);
    for list in &lists {
        assert!(titles(&app.get(list, None).await).is_empty(), "{list}");
    }
}

async fn a_new_article_shows_at_once_in_warm_lists_and_tags(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    publish(app, &ada, "First", &["rust"]).await;
    let lists = [
        ARTICLES.to_owned(),
        format!("{ARTICLES}?author=ada"),
        format!("{ARTICLES}?tag=rust"),
    ];
    let search = format!("{ARTICLES}?q=second");
    for list in &lists {
        assert_eq!(titles(&app.get(list, None).await), ["First"], "{list}");
    }
    assert!(titles(&app.get(&search, None).await).is_empty());
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "rust", "articles": 1}])
    );

    publish(app, &ada, "Second", &["rust"]).await;

    for list in &lists {
        assert_eq!(
            titles(&app.get(list, None).await),
            ["Second", "First"],
            "{list}"
        );
    }
    assert_eq!(titles(&app.get(&search, None).await), ["Second"]);
    assert_eq!(
        tag_counts(&app.get("/api/v1/tags", None).await),
        json!([{"name": "rust", "articles": 2}])
    );
}

async fn comments_show_at_once_in_the_warm_comment_list_when_written_and_deleted(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Reader).await;
    let id = publish(app, &ada, "Discussed", &[]).await;
    let comments = format!("{}/comments", article_uri(id));
    let bodies = async || -> Vec<String> {
        let response = app.get(&comments, None).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        response.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|c| c["body"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(bodies().await.is_empty());

    let created = app
        .post(&comments, json!({"body": "First!"}), Some(&bob.token))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(bodies().await, ["First!"]);

    let location = created.header("location").to_owned();
    let deleted = app.delete(&location, Some(&bob.token)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert!(
        bodies().await.is_empty(),
        "a deleted comment is still listed"
    );
}

/// Usernames match case-insensitively on both backends, so `?author=ADA`
/// lists ada's articles; a write by ada must refresh that list too.
async fn an_author_list_asked_for_in_another_case_shows_a_patch_at_once(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = publish(app, &ada, "Before", &[]).await;
    let list = format!("{ARTICLES}?author=ADA");
    assert_eq!(
        titles(&app.get(&list, None).await),
        ["Before"],
        "precondition: author names match in any case"
    );

    retitle(app, &ada, id, "After").await;

    assert_eq!(
        titles(&app.get(&list, None).await),
        ["After"],
        "{list} still serves the list from before the write"
    );
}

on_both_backends!(
    a_patch_shows_at_once_in_the_article_every_list_and_the_tags,
    a_put_and_a_delete_show_at_once_in_the_article_and_the_lists,
    a_new_article_shows_at_once_in_warm_lists_and_tags,
    comments_show_at_once_in_the_warm_comment_list_when_written_and_deleted,
    an_author_list_asked_for_in_another_case_shows_a_patch_at_once,
);

with_redis!(
    a_patch_shows_at_once_in_the_article_every_list_and_the_tags,
    a_put_and_a_delete_show_at_once_in_the_article_and_the_lists,
    a_new_article_shows_at_once_in_warm_lists_and_tags,
    comments_show_at_once_in_the_warm_comment_list_when_written_and_deleted,
);
