//! Updating articles: PUT and PATCH, versions and times, who may edit,
//! If-Match, and concurrent writers.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use feedgate::domain::Role;
use serde_json::{Value, json};

use super::{assert_iso8601_utc, close_pool, id_of, path_of, send_with, set_times};
use crate::on_both_backends;
use crate::support::{Backend, TestApp, json_request};

async fn put_replaces_the_article_and_resets_absent_fields(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let original = app
        .article(
            &ada,
            json!({"title": "Original", "body": "Old body.", "summary": "Custom.", "status": "published", "tags": ["a", "b"], "slug": "kept-slug"}),
        )
        .await;

    let response = app
        .put(
            &path_of(&original),
            json!({"title": "Replaced", "body": "New body."}),
            Some(&ada.token),
        )
        .await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.header("cache-control"), "no-store");
    let replaced = response.json();
    assert_eq!(replaced["id"], original["id"]);
    assert_eq!(replaced["slug"], "kept-slug");
    assert_eq!(replaced["title"], "Replaced");
    assert_eq!(replaced["body"], "New body.");
    assert_eq!(replaced["summary"], "New body.");
    assert_eq!(replaced["status"], "draft");
    assert_eq!(replaced["tags"], json!([]));
    assert_eq!(replaced["published_at"], Value::Null);
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["created_at"], original["created_at"]);
    let read = app.get(&path_of(&original), Some(&ada.token)).await;
    assert_eq!(read.json(), replaced);
}

async fn put_with_unknown_fields_or_a_blank_body_is_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(&ada, json!({"title": "Original", "body": "Text."}))
        .await;

    let unknown = app
        .put(
            &path_of(&article),
            json!({"title": "T", "body": "B", "version": 5}),
            Some(&ada.token),
        )
        .await;
    unknown.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let blank = app
        .put(
            &path_of(&article),
            json!({"title": "T", "body": " "}),
            Some(&ada.token),
        )
        .await;
    let problem = blank.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "body", "{problem}");

    let read = app.get(&path_of(&article), Some(&ada.token)).await.json();
    assert_eq!(read["version"], 1);
    assert_eq!(read["title"], "Original");
}

async fn patch_changes_only_the_given_fields(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let original = app
        .article(
            &ada,
            json!({"title": "Original", "body": "Body.", "summary": "Custom.", "status": "published", "tags": ["a", "b"], "slug": "kept-slug"}),
        )
        .await;

    let response = app
        .patch(
            &path_of(&original),
            json!({"title": "Retitled"}),
            Some(&ada.token),
        )
        .await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let patched = response.json();
    assert_eq!(patched["title"], "Retitled");
    for field in [
        "id",
        "slug",
        "summary",
        "body",
        "status",
        "tags",
        "author",
        "created_at",
        "published_at",
    ] {
        assert_eq!(patched[field], original[field], "{field}");
    }
    assert_eq!(patched["version"], 2);

    let tags = app
        .patch(
            &path_of(&original),
            json!({"tags": ["New", "a"], "slug": "new-slug"}),
            Some(&ada.token),
        )
        .await
        .json();
    assert_eq!(tags["tags"], json!(["a", "new"]));
    assert_eq!(tags["slug"], "new-slug");
    assert_eq!(tags["title"], "Retitled");
    assert_eq!(tags["version"], 3);
}

async fn every_update_bumps_the_version_and_updated_at(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(&ada, json!({"title": "Versioned", "body": "Text."}))
        .await;
    // Backdated in the database (times have second precision), before
    // any read could cache the article.
    let long_ago = 1_600_000_000_000;
    set_times(app, id_of(&article), long_ago, long_ago, None).await;
    let long_ago_iso = "2020-09-13T12:26:40Z";

    let patched = app
        .patch(
            &path_of(&article),
            json!({"body": "Edited."}),
            Some(&ada.token),
        )
        .await
        .json();
    assert_eq!(patched["version"], 2);
    assert_ne!(patched["updated_at"], long_ago_iso);
    assert_eq!(patched["created_at"], long_ago_iso);
    assert_iso8601_utc(&patched["updated_at"]);

    let put = app
        .put(
            &path_of(&article),
            json!({"title": "Versioned", "body": "Edited."}),
            Some(&ada.token),
        )
        .await
        .json();
    assert_eq!(put["version"], 3, "even an update that changes nothing");
}

async fn publishing_sets_published_at_and_unpublishing_clears_it(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(&ada, json!({"title": "Soon", "body": "Text."}))
        .await;
    let path = path_of(&article);
    assert_eq!(article["published_at"], Value::Null);

    let published = app
        .patch(&path, json!({"status": "published"}), Some(&ada.token))
        .await
        .json();
    assert_eq!(published["status"], "published");
    assert_iso8601_utc(&published["published_at"]);
    assert_eq!(app.get(&path, None).await.status, StatusCode::OK);

    let long_ago = 1_600_000_000_000;
    set_times(app, id_of(&article), long_ago, long_ago, Some(long_ago)).await;
    let edited = app
        .patch(&path, json!({"title": "Soon, edited"}), Some(&ada.token))
        .await
        .json();
    assert_eq!(
        edited["published_at"], "2020-09-13T12:26:40Z",
        "an edit keeps the first publication time"
    );

    let unpublished = app
        .patch(&path, json!({"status": "draft"}), Some(&ada.token))
        .await
        .json();
    assert_eq!(unpublished["status"], "draft");
    assert_eq!(unpublished["published_at"], Value::Null);
    app.get(&path, None).await.problem(StatusCode::NOT_FOUND);
}

async fn another_author_may_not_edit_an_article(app: &TestApp) {
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
        let put = app
            .put(
                &path,
                json!({"title": "Hijacked", "body": "X."}),
                Some(&user.token),
            )
            .await;
        put.problem(StatusCode::FORBIDDEN);
        let patch = app
            .patch(&path, json!({"title": "Hijacked"}), Some(&user.token))
            .await;
        patch.problem(StatusCode::FORBIDDEN);
    }
    app.patch(&path, json!({"title": "Hijacked"}), None)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    let read = app.get(&path, None).await.json();
    assert_eq!(read["title"], "Mine");
    assert_eq!(read["version"], 1);
}

async fn editors_and_admins_may_edit_anyones_article(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let ed = app.user("ed", Role::Editor).await;
    let root = app.user("root", Role::Admin).await;
    let article = app
        .article(&ada, json!({"title": "Draft", "body": "Text."}))
        .await;
    let path = path_of(&article);

    let by_editor = app
        .patch(&path, json!({"title": "Edited by ed"}), Some(&ed.token))
        .await;
    assert_eq!(by_editor.status, StatusCode::OK, "{}", by_editor.text());
    let by_admin = app
        .put(
            &path,
            json!({"title": "Replaced by root", "body": "New."}),
            Some(&root.token),
        )
        .await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.text());

    let read = by_admin.json();
    assert_eq!(read["title"], "Replaced by root");
    assert_eq!(read["version"], 3);
    assert_eq!(
        read["author"],
        json!({"id": ada.id, "username": "ada"}),
        "the author stays"
    );
}

async fn if_match_with_the_current_etag_or_version_succeeds(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(&ada, json!({"title": "Guarded", "body": "Text."}))
        .await;
    let path = path_of(&article);
    let etag = app
        .get(&path, Some(&ada.token))
        .await
        .header("etag")
        .to_owned();

    let by_etag = send_with(
        app,
        Method::PATCH,
        &path,
        Some(json!({"title": "One"})),
        Some(&ada),
        (header::IF_MATCH, &etag),
    )
    .await;
    assert_eq!(by_etag.status, StatusCode::OK, "{}", by_etag.text());
    assert_eq!(by_etag.json()["version"], 2);

    let quoted = send_with(
        app,
        Method::PUT,
        &path,
        Some(json!({"title": "Two", "body": "Text."})),
        Some(&ada),
        (header::IF_MATCH, "\"2\""),
    )
    .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.text());
    assert_eq!(quoted.json()["version"], 3);

    let bare = send_with(
        app,
        Method::PATCH,
        &path,
        Some(json!({"title": "Three"})),
        Some(&ada),
        (header::IF_MATCH, "3"),
    )
    .await;
    assert_eq!(bare.status, StatusCode::OK, "{}", bare.text());
    assert_eq!(bare.json()["version"], 4);
}

async fn a_stale_if_match_is_a_precondition_failure(app: &TestApp) {
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
    app.patch(&path, json!({"title": "Moved on"}), Some(&ada.token))
        .await;

    for stale in [old_etag.as_str(), "\"1\"", "1", "\"not-the-etag\""] {
        for method in [Method::PATCH, Method::PUT] {
            let response = send_with(
                app,
                method.clone(),
                &path,
                Some(json!({"title": "Lost update", "body": "X."})),
                Some(&ada),
                (header::IF_MATCH, stale),
            )
            .await;
            let problem = response.problem(StatusCode::PRECONDITION_FAILED);
            assert_eq!(problem["code"], "precondition_failed", "{method} {stale}");
        }
    }
    let current_etag = app
        .get(&path, Some(&ada.token))
        .await
        .header("etag")
        .to_owned();
    let weak = send_with(
        app,
        Method::PATCH,
        &path,
        Some(json!({"title": "Weak"})),
        Some(&ada),
        (header::IF_MATCH, &format!("W/{current_etag}")),
    )
    .await;
    weak.problem(StatusCode::PRECONDITION_FAILED);

    let read = app.get(&path, Some(&ada.token)).await.json();
    assert_eq!(read["title"], "Moved on");
    assert_eq!(read["version"], 2);
}

async fn concurrent_conditional_updates_let_exactly_one_win(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let ed = app.user("ed", Role::Editor).await;
    let article = app
        .article(&ada, json!({"title": "Contended", "body": "Text."}))
        .await;
    let path = path_of(&article);

    let (by_ada, by_ed) = tokio::join!(
        send_with(
            app,
            Method::PATCH,
            &path,
            Some(json!({"title": "Ada wins"})),
            Some(&ada),
            (header::IF_MATCH, "\"1\""),
        ),
        send_with(
            app,
            Method::PATCH,
            &path,
            Some(json!({"title": "Ed wins"})),
            Some(&ed),
            (header::IF_MATCH, "\"1\""),
        ),
    );

    let read = app.get(&path, Some(&ada.token)).await.json();
    close_pool(app).await;

    let (winner, loser) = if by_ada.status == StatusCode::OK {
        (by_ada, by_ed)
    } else {
        (by_ed, by_ada)
    };
    assert_eq!(winner.status, StatusCode::OK, "{}", winner.text());
    loser.problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(read["version"], 2);
    assert_eq!(read["title"], winner.json()["title"]);
}

/// Without If-Match a client set no precondition: writes racing on one
/// article all land, each on the version the one before it left.
async fn concurrent_unconditional_updates_all_land(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let ed = app.user("ed", Role::Editor).await;
    let article = app
        .article(&ada, json!({"title": "Contended", "body": "Text."}))
        .await;
    let path = path_of(&article);
    const WRITERS: usize = 16;

    let writes = (0..WRITERS).map(|i| {
        let (user, body) = if i % 2 == 0 {
            (&ada, json!({"summary": format!("by writer {i}")}))
        } else {
            (&ed, json!({"title": format!("Title {i}"), "body": "Text.", "summary": format!("by writer {i}")}))
        };
        let method = if i % 4 == 3 { Method::PUT } else { Method::PATCH };
        let request = json_request(method, &path, Some(body), Some(&user.token));
        app.spawn(request.map(Body::from))
    });
    let writes: Vec<_> = writes.collect();
    let mut responses = Vec::new();
    for write in writes {
        responses.push(write.await);
    }
    let read = app.get(&path, Some(&ada.token)).await.json();
    close_pool(app).await;

    for response in responses {
        let response = response.unwrap();
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }
    assert_eq!(read["version"], 1 + WRITERS as i64);
}

async fn patching_to_a_slug_another_article_has_is_a_conflict(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let first = app
        .article(&ada, json!({"title": "First", "body": "One."}))
        .await;
    let second = app
        .article(&ada, json!({"title": "Second", "body": "Two."}))
        .await;

    let response = app
        .patch(
            &path_of(&second),
            json!({"slug": first["slug"]}),
            Some(&ada.token),
        )
        .await;
    let put = app
        .put(
            &path_of(&second),
            json!({"title": "Second", "body": "Two.", "slug": "first"}),
            Some(&ada.token),
        )
        .await;
    let read = app.get(&path_of(&second), Some(&ada.token)).await.json();
    close_pool(app).await;

    response.problem(StatusCode::CONFLICT);
    put.problem(StatusCode::CONFLICT);
    assert_eq!(read["slug"], "second");
    assert_eq!(read["version"], 1);
}

/// Misses that hold every connection they may use (a burst of cold reads
/// on a slow database) hold up further misses, never a write.
#[tokio::test]
async fn a_write_is_not_held_up_by_misses_that_take_every_read_connection() {
    let app = TestApp::with_settings(Backend::MySql, |s| {
        s.database.acquire_timeout_ms = 1_000;
    })
    .await;
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Held", "body": "Body.", "status": "published"}),
        )
        .await;
    let path = path_of(&article);

    let held = app.state.store.hold_fill_connections().await.unwrap();
    let patch = app
        .patch(&path, json!({"summary": "Written."}), Some(&ada.token))
        .await;
    let miss = app.get("/api/v1/articles?per_page=3", None).await;
    drop(held);

    assert_eq!(patch.status, StatusCode::OK, "{}", patch.text());
    miss.problem(StatusCode::SERVICE_UNAVAILABLE);
    let read = app.get(&path, None).await.json();
    assert_eq!(read["summary"], "Written.");
}

on_both_backends!(
    put_replaces_the_article_and_resets_absent_fields,
    put_with_unknown_fields_or_a_blank_body_is_refused,
    patch_changes_only_the_given_fields,
    every_update_bumps_the_version_and_updated_at,
    publishing_sets_published_at_and_unpublishing_clears_it,
    another_author_may_not_edit_an_article,
    editors_and_admins_may_edit_anyones_article,
    if_match_with_the_current_etag_or_version_succeeds,
    a_stale_if_match_is_a_precondition_failure,
    concurrent_conditional_updates_let_exactly_one_win,
    concurrent_unconditional_updates_all_land,
    patching_to_a_slug_another_article_has_is_a_conflict,
);
