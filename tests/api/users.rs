//! Tests for users.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use feedgate::domain::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, PASSWORD, TestApp, TestUser, json_request};

async fn register(app: &TestApp, body: Value) -> crate::support::TestResponse {
    app.post("/api/v1/users", body, None).await
}

/// The fields named in the 422's `errors`.
fn error_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("a 422 lists its field errors")
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect()
}

async fn registering_answers_201_with_location_and_the_new_author(app: &TestApp) {
    let response = register(app, json!({"username": "ada", "password": PASSWORD})).await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert_eq!(response.header("cache-control"), "no-store");
    let user = response.json();
    let id = user["id"].as_i64().expect("a numeric id");
    assert_eq!(response.header("location"), format!("/api/v1/users/{id}"));
    assert_eq!(user["username"], "ada");
    assert_eq!(user["role"], "author");
    let created_at = user["created_at"].as_str().expect("created_at is a string");
    assert!(created_at.ends_with('Z'), "{created_at}");
    let mut keys: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "id", "role", "username"]);
    let text = response.text();
    assert!(!text.contains("password") && !text.contains("argon2") && !text.contains(PASSWORD));

    let fetched = app.get(&format!("/api/v1/users/{id}"), None).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json()["username"], "ada");
}

async fn registration_role_comes_from_configuration(backend: Backend) {
    let app = TestApp::with_settings(backend, |s| s.auth.registration_role = Role::Reader).await;

    let response = register(&app, json!({"username": "rita", "password": PASSWORD})).await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    assert_eq!(response.json()["role"], "reader");
}

#[tokio::test]
async fn registration_role_comes_from_configuration_on_sqlite() {
    registration_role_comes_from_configuration(Backend::Sqlite).await;
}

#[tokio::test]
async fn registration_role_comes_from_configuration_on_mysql() {
    registration_role_comes_from_configuration(Backend::MySql).await;
}

async fn a_role_in_the_registration_body_is_refused(app: &TestApp) {
    let response = register(
        app,
        json!({"username": "eve", "password": PASSWORD, "role": "admin"}),
    )
    .await;

    response.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let taken = register(app, json!({"username": "eve", "password": PASSWORD})).await;
    assert_eq!(taken.status, StatusCode::CREATED, "no user was created");
}

async fn a_taken_username_is_a_conflict_even_in_another_case(app: &TestApp) {
    let first = register(app, json!({"username": "ada", "password": PASSWORD})).await;
    assert_eq!(first.status, StatusCode::CREATED);

    let same = register(app, json!({"username": "ada", "password": PASSWORD})).await;
    assert_eq!(same.problem(StatusCode::CONFLICT)["code"], "conflict");
    let other_case = register(app, json!({"username": "ADA", "password": PASSWORD})).await;
    other_case.problem(StatusCode::CONFLICT);
}

async fn usernames_that_are_too_short_too_long_or_odd_are_refused(app: &TestApp) {
    let too_long = "a".repeat(33);
    for username in [
        "ab",
        too_long.as_str(),
        "ada lovelace",
        "<script>",
        "ada@home",
    ] {
        let response = register(app, json!({"username": username, "password": PASSWORD})).await;

        let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["code"], "validation_failed");
        assert_eq!(
            error_fields(&problem),
            ["username"],
            "{username}: {problem}"
        );
    }
    let longest = "b".repeat(32);
    let ok = register(app, json!({"username": longest, "password": PASSWORD})).await;
    assert_eq!(ok.status, StatusCode::CREATED, "32 characters are allowed");
}

async fn a_short_password_is_refused_without_echoing_it(app: &TestApp) {
    let response = register(app, json!({"username": "ada", "password": "Sh0rt!x"})).await;

    let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&problem), ["password"]);
    assert!(!response.text().contains("Sh0rt!x"), "{}", response.text());
}

async fn the_signed_in_user_reads_their_own_profile_privately(app: &TestApp) {
    let ada = app.user("ada", Role::Editor).await;

    let response = app.get("/api/v1/users/me", Some(&ada.token)).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.header("cache-control"), "private, no-store");
    let me = response.json();
    assert_eq!(me["id"], ada.id);
    assert_eq!(me["username"], "ada");
    assert_eq!(me["role"], "editor");
}

async fn the_own_profile_without_a_token_is_401_with_a_challenge(app: &TestApp) {
    let response = app.get("/api/v1/users/me", None).await;

    assert_eq!(
        response.problem(StatusCode::UNAUTHORIZED)["code"],
        "unauthorized"
    );
    assert_eq!(response.header("www-authenticate"), "Bearer");
    assert_eq!(response.header("cache-control"), "no-store");
}

async fn a_public_profile_is_found_by_id_and_an_unknown_id_is_404(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;

    let found = app.get(&format!("/api/v1/users/{}", ada.id), None).await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.json()["username"], "ada");
    assert!(found.header("etag").starts_with('"'));

    let missing = app
        .get(&format!("/api/v1/users/{}", ada.id + 1000), None)
        .await;
    missing.problem(StatusCode::NOT_FOUND);
    let not_an_id = app.get("/api/v1/users/ada", None).await;
    not_an_id.problem(StatusCode::NOT_FOUND);
}

async fn an_admin_changes_a_users_role(app: &TestApp) {
    let admin = app.user("root", Role::Admin).await;
    let ada = app.user("ada", Role::Author).await;
    let uri = format!("/api/v1/users/{}", ada.id);

    let response = app
        .patch(&uri, json!({"role": "editor"}), Some(&admin.token))
        .await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.header("cache-control"), "no-store");
    assert_eq!(response.json()["role"], "editor");
    assert_eq!(app.get(&uri, None).await.json()["role"], "editor");
}

async fn only_admins_change_roles(app: &TestApp) {
    let editor = app.user("ed", Role::Editor).await;
    let ada = app.user("ada", Role::Author).await;
    let uri = format!("/api/v1/users/{}", ada.id);

    let by_editor = app
        .patch(&uri, json!({"role": "admin"}), Some(&editor.token))
        .await;
    by_editor.problem(StatusCode::FORBIDDEN);
    let by_self = app
        .patch(&uri, json!({"role": "admin"}), Some(&ada.token))
        .await;
    by_self.problem(StatusCode::FORBIDDEN);
    let anonymous = app.patch(&uri, json!({"role": "admin"}), None).await;
    anonymous.problem(StatusCode::UNAUTHORIZED);

    assert_eq!(app.get(&uri, None).await.json()["role"], "author");
}

async fn an_unknown_role_is_422(app: &TestApp) {
    let admin = app.user("root", Role::Admin).await;
    let ada = app.user("ada", Role::Author).await;
    let uri = format!("/api/v1/users/{}", ada.id);

    for role in ["superuser", "Admin", ""] {
        let response = app
            .patch(&uri, json!({"role": role}), Some(&admin.token))
            .await;
        response.problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(app.get(&uri, None).await.json()["role"], "author");
}

async fn a_role_of_the_wrong_json_type_is_422(app: &TestApp) {
    let admin = app.user("root", Role::Admin).await;
    let ada = app.user("ada", Role::Author).await;
    let uri = format!("/api/v1/users/{}", ada.id);
    let mut answers = Vec::new();

    for role in [json!(3), json!(null), json!(true), json!(["admin"])] {
        let response = app
            .patch(&uri, json!({"role": role}), Some(&admin.token))
            .await;
        answers.push((role, response.status));
    }

    for (role, status) in &answers {
        assert_eq!(
            *status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{role}: {answers:?}"
        );
    }
}

async fn changing_the_role_of_an_unknown_user_is_404(app: &TestApp) {
    let admin = app.user("root", Role::Admin).await;

    let response = app
        .patch(
            &format!("/api/v1/users/{}", admin.id + 1000),
            json!({"role": "editor"}),
            Some(&admin.token),
        )
        .await;

    response.problem(StatusCode::NOT_FOUND);
}

/// Roles are read from the user's record on every request, not from the
/// token: an admin demoted by another admin cannot use the token they still
/// hold to undo it, or to demote the other admin in turn.
async fn a_demoted_admin_is_refused_at_once_with_the_token_they_still_hold(app: &TestApp) {
    let ann = app.user("ann", Role::Admin).await;
    let bea = app.user("bea", Role::Admin).await;
    let ada = app.user("ada", Role::Author).await;
    let uri = |id: i64| format!("/api/v1/users/{id}");
    let warm = app.set_role(&ann, ada.id, "editor").await;
    assert_eq!(warm.status, StatusCode::OK, "precondition: {}", warm.text());

    let demoted = app.set_role(&bea, ann.id, "reader").await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());

    let promote_self = app.set_role(&ann, ann.id, "admin").await;
    promote_self.problem(StatusCode::FORBIDDEN);
    let demote_other = app.set_role(&ann, bea.id, "reader").await;
    demote_other.problem(StatusCode::FORBIDDEN);
    assert_eq!(app.get(&uri(ann.id), None).await.json()["role"], "reader");
    assert_eq!(app.get(&uri(bea.id), None).await.json()["role"], "admin");
    let me = app.get("/api/v1/users/me", Some(&ann.token)).await;
    assert_eq!(me.status, StatusCode::OK, "a demotion is no sign-out");
    assert_eq!(me.json()["role"], "reader");
}

async fn a_role_change_ends_the_users_refresh_tokens(app: &TestApp) {
    let admin = app.user("root", Role::Admin).await;
    let ed = app.user("ed", Role::Editor).await;
    let signed_in = app.sign_in("ed", crate::support::PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text());
    let refresh = signed_in.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let demoted = app.set_role(&admin, ed.id, "author").await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());

    let body = json!({"grant_type": "refresh_token", "refresh_token": refresh});
    app.post("/api/v1/tokens", body, None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let again = app.sign_in("ed", crate::support::PASSWORD).await;
    assert_eq!(again.status, StatusCode::OK, "signing in again works");
}

async fn a_demoted_editor_may_no_longer_edit_others_articles_at_once(app: &TestApp) {
    let admin = app.user("root", Role::Admin).await;
    let ed = app.user("ed", Role::Editor).await;
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Ada's", "body": "Hers.", "status": "published"}),
        )
        .await;
    let uri = format!("/api/v1/articles/{}", article["id"]);
    let edited = app
        .patch(&uri, json!({"title": "Edited"}), Some(&ed.token))
        .await;
    assert_eq!(
        edited.status,
        StatusCode::OK,
        "precondition: {}",
        edited.text()
    );

    let demoted = app.set_role(&admin, ed.id, "author").await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());

    let again = app
        .patch(&uri, json!({"title": "Edited again"}), Some(&ed.token))
        .await;
    again.problem(StatusCode::FORBIDDEN);
    let delete = app.delete(&uri, Some(&ed.token)).await;
    delete.problem(StatusCode::FORBIDDEN);
    assert_eq!(app.get(&uri, None).await.json()["title"], "Edited");
}

/// The other direction: a promotion needs no new token either.
async fn a_promotion_applies_to_the_token_already_held(app: &TestApp) {
    let admin = app.user("root", Role::Admin).await;
    let rita = app.user("rita", Role::Reader).await;
    let post = async || {
        app.post(
            "/api/v1/articles",
            json!({"title": "Rita's", "body": "Hers."}),
            Some(&rita.token),
        )
        .await
    };
    post().await.problem(StatusCode::FORBIDDEN);

    let promoted = app.set_role(&admin, rita.id, "author").await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text());

    let created = post().await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["author"]["username"], "rita");
}

/// After a role change, signing in again gives a token that works, with
/// the new role.
async fn a_token_issued_after_a_role_change_works_with_the_new_role(app: &TestApp) {
    let admin = app.user("root", Role::Admin).await;
    let ed = app.user("ed", Role::Editor).await;
    let demoted = app.set_role(&admin, ed.id, "reader").await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());

    let signed_in = app.sign_in("ed", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text());
    let token = signed_in.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let me = app.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["role"], "reader");
    let write = app
        .post(
            "/api/v1/articles",
            json!({"title": "No", "body": "No."}),
            Some(&token),
        )
        .await;
    write.problem(StatusCode::FORBIDDEN);
}

on_both_backends!(
    the_last_admin_cannot_be_demoted,
    two_admins_demoting_each_other_at_once_leave_one,
    registering_answers_201_with_location_and_the_new_author,
    a_role_in_the_registration_body_is_refused,
    a_taken_username_is_a_conflict_even_in_another_case,
    usernames_that_are_too_short_too_long_or_odd_are_refused,
    a_short_password_is_refused_without_echoing_it,
    the_signed_in_user_reads_their_own_profile_privately,
    the_own_profile_without_a_token_is_401_with_a_challenge,
    a_public_profile_is_found_by_id_and_an_unknown_id_is_404,
    an_admin_changes_a_users_role,
    only_admins_change_roles,
    an_unknown_role_is_422,
    a_role_of_the_wrong_json_type_is_422,
    changing_the_role_of_an_unknown_user_is_404,
    a_demoted_admin_is_refused_at_once_with_the_token_they_still_hold,
    a_demoted_editor_may_no_longer_edit_others_articles_at_once,
    a_role_change_ends_the_users_refresh_tokens,
    a_promotion_applies_to_the_token_already_held,
    a_token_issued_after_a_role_change_works_with_the_new_role,
);

/// The last admin cannot stop being one, by its own hand or another's.
async fn the_last_admin_cannot_be_demoted(app: &TestApp) {
    let root = app.user("root", Role::Admin).await;

    for role in ["editor", "author", "reader"] {
        let response = app.set_role(&root, root.id, role).await;
        let problem = response.problem(StatusCode::CONFLICT);
        assert_eq!(problem["code"], "conflict");
        assert!(
            problem["detail"].as_str().unwrap().contains("last admin"),
            "{problem}"
        );
    }
    let me = app.get("/api/v1/users/me", Some(&root.token)).await;
    assert_eq!(me.json()["role"], "admin", "nothing was written");
    let same = app.set_role(&root, root.id, "admin").await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text());

    let ann = app.user("ann", Role::Author).await;
    let promoted = app.set_role(&root, ann.id, "admin").await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text());
    let stepped_down = app.set_role(&root, root.id, "reader").await;
    assert_eq!(
        stepped_down.status,
        StatusCode::OK,
        "{}",
        stepped_down.text()
    );
    app.set_role(&ann, ann.id, "reader")
        .await
        .problem(StatusCode::CONFLICT);
}

/// Two admins demoting each other at the same moment leave one admin,
/// whichever request wins: the other is refused (403 if its caller was
/// demoted first, 409 if it found its target the last admin).
async fn two_admins_demoting_each_other_at_once_leave_one(app: &TestApp) {
    let mut survivor = app.user("admin0", Role::Admin).await;
    for round in 1..=6 {
        let other = app.user(&format!("admin{round}"), Role::Admin).await;
        let demote = |by: &TestUser, id: i64| {
            let request = json_request(
                Method::PATCH,
                &format!("/api/v1/users/{id}"),
                Some(json!({"role": "reader"})),
                Some(&by.token),
            );
            app.spawn(request.map(Body::from))
        };
        let (one, two) = (demote(&survivor, other.id), demote(&other, survivor.id));
        let statuses = [one.await.unwrap().status, two.await.unwrap().status];

        let mut admins = Vec::new();
        for user in [survivor, other] {
            let role = app
                .get(&format!("/api/v1/users/{}", user.id), None)
                .await
                .json()["role"]
                .clone();
            if role == "admin" {
                admins.push(user);
            }
        }
        assert_eq!(admins.len(), 1, "round {round}: {statuses:?}");
        assert!(
            statuses.contains(&StatusCode::OK),
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.contains(&StatusCode::FORBIDDEN) || statuses.contains(&StatusCode::CONFLICT),
            "round {round}: {statuses:?}"
        );
        survivor = admins.pop().expect("one admin");
    }
}
