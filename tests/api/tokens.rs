//! Tests for tokens.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use feedgate::auth::RefreshToken;
use feedgate::domain::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, PASSWORD, SharedRedis, TestApp, TestResponse, TestUser};

/// The key the harness configures.
const TEST_KEY: &str = "test-only-key-0123456789abcdef0123456789";

async fn refresh(app: &TestApp, refresh_token: &Value) -> TestResponse {
    let body = json!({"grant_type": "refresh_token", "refresh_token": refresh_token});
    app.post("/api/v1/tokens", body, None).await
}

/// An HS256 token with the claims the service issues (`jti` and the first
/// token version included, so a refusal is down to the key, role or expiry
/// under test), signed with `key`.
fn mint(key: &str, user: &TestUser, role: &str, iat: u64, exp: u64) -> String {
    sign(
        key,
        &json!({
            "sub": user.id.to_string(), "name": user.username, "role": role, "ver": 0,
            "iss": "feedgate", "iat": iat, "exp": exp, "jti": format!("test-{iat}-{exp}"),
        }),
    )
}

fn sign(key: &str, claims: &Value) -> String {
    let key = EncodingKey::from_secret(key.as_bytes());
    encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

/// Sends `authorization` to a protected write and to a public read; both must be 401.
async fn assert_refused_everywhere(app: &TestApp, authorization: &str) {
    let post = Request::post("/api/v1/articles")
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"title": "Pwned", "body": "x"}).to_string(),
        ))
        .unwrap();
    let write = app.send(post).await;
    write.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(write.header("www-authenticate"), "Bearer");

    let get = Request::get("/api/v1/articles")
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .unwrap();
    let read = app.send(get).await;
    read.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(read.header("www-authenticate"), "Bearer");
}

async fn the_password_grant_issues_a_bearer_pair_that_is_never_cached(app: &TestApp) {
    app.user("ada", Role::Author).await;

    let response = app.sign_in("ada", PASSWORD).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.header("cache-control"), "no-store");
    let tokens = response.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(!tokens["refresh_token"].as_str().unwrap().is_empty());
    let access = tokens["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/users/me", Some(access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["username"], "ada");
}

async fn a_wrong_password_and_an_unknown_user_get_the_same_401(app: &TestApp) {
    app.user("ada", Role::Author).await;

    let wrong_password = app.sign_in("ada", "not the password").await;
    let unknown_user = app.sign_in("nobody", PASSWORD).await;

    let wrong = wrong_password.problem(StatusCode::UNAUTHORIZED);
    let unknown = unknown_user.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(wrong["detail"], unknown["detail"]);
    assert_eq!(wrong_password.header("cache-control"), "no-store");
}

async fn the_refresh_grant_issues_a_new_pair_that_works(app: &TestApp) {
    app.user("ada", Role::Author).await;
    let first = app.sign_in("ada", PASSWORD).await.json();

    let response = refresh(app, &first["refresh_token"]).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.header("cache-control"), "no-store");
    let second = response.json();
    assert_eq!(second["token_type"], "Bearer");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let access = second["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/users/me", Some(access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["username"], "ada");
    let again = refresh(app, &second["refresh_token"]).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the new refresh token works once"
    );
}

async fn a_refreshed_access_token_differs_from_the_one_it_replaces(app: &TestApp) {
    app.user("ada", Role::Author).await;
    let first = app.sign_in("ada", PASSWORD).await.json();

    let second = refresh(app, &first["refresh_token"]).await.json();

    assert_ne!(second["access_token"], first["access_token"]);
}

async fn reusing_a_spent_refresh_token_revokes_the_whole_family(app: &TestApp) {
    app.user("ada", Role::Author).await;
    let first = app.sign_in("ada", PASSWORD).await.json();
    let second = refresh(app, &first["refresh_token"]).await.json();

    let replay = refresh(app, &first["refresh_token"]).await;

    replay.problem(StatusCode::UNAUTHORIZED);
    let newest = refresh(app, &second["refresh_token"]).await;
    newest.problem(StatusCode::UNAUTHORIZED);
}

async fn an_unknown_refresh_token_is_401(app: &TestApp) {
    let response = refresh(app, &json!("not-a-refresh-token")).await;

    assert_eq!(
        response.problem(StatusCode::UNAUTHORIZED)["code"],
        "unauthorized"
    );
    assert_eq!(response.header("www-authenticate"), "Bearer");
}

async fn an_unknown_grant_type_is_422(app: &TestApp) {
    app.user("ada", Role::Author).await;
    let body = json!({"grant_type": "client_credentials", "username": "ada", "password": PASSWORD});

    let response = app.post("/api/v1/tokens", body, None).await;

    response.problem(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_token_request_missing_fields_is_422(app: &TestApp) {
    for body in [
        json!({"username": "ada", "password": PASSWORD}),
        json!({"grant_type": "password", "username": "ada"}),
        json!({"grant_type": "password", "password": PASSWORD}),
        json!({"grant_type": "refresh_token"}),
    ] {
        let response = app.post("/api/v1/tokens", body.clone(), None).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            response.text()
        );
        response.problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
}

async fn a_token_signed_with_another_key_is_refused(app: &TestApp) {
    let mallory = app.user("mallory", Role::Author).await;
    let now = get_current_timestamp();
    let genuine = mint(TEST_KEY, &mallory, "author", now, now + 600);
    let me = app.get("/api/v1/users/me", Some(&genuine)).await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "the same claims with the real key work"
    );
    let other_key = "some-other-key-0123456789abcdef01234567";

    let forged = mint(other_key, &mallory, "admin", now, now + 600);

    assert_refused_everywhere(app, &format!("Bearer {forged}")).await;
}

async fn an_unsigned_alg_none_token_is_refused(app: &TestApp) {
    let mallory = app.user("mallory", Role::Author).await;
    let payload = mallory.token.split('.').nth(1).unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);

    assert_refused_everywhere(app, &format!("Bearer {header}.{payload}.")).await;
}

async fn an_expired_token_is_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let now = get_current_timestamp();
    let fresh = mint(TEST_KEY, &ada, "author", now, now + 600);
    let me = app.get("/api/v1/users/me", Some(&fresh)).await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "a fresh token minted the same way works"
    );

    let expired = mint(TEST_KEY, &ada, "author", now - 1000, now - 60);

    assert_refused_everywhere(app, &format!("Bearer {expired}")).await;
    let response = app.get("/api/v1/users/me", Some(&expired)).await;
    let detail = response.problem(StatusCode::UNAUTHORIZED)["detail"].clone();
    assert!(detail.as_str().unwrap().contains("expired"), "{detail}");
}

async fn a_malformed_token_is_refused(app: &TestApp) {
    assert_refused_everywhere(app, "Bearer not.a.jwt").await;
    assert_refused_everywhere(app, "Bearer garbage").await;
}

async fn a_basic_authorization_header_is_refused(app: &TestApp) {
    app.user("ada", Role::Author).await;
    let credentials = STANDARD.encode(format!("ada:{PASSWORD}"));

    assert_refused_everywhere(app, &format!("Basic {credentials}")).await;
}

async fn a_token_whose_role_claim_was_edited_is_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let mut parts: Vec<String> = ada.token.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    assert_eq!(claims["role"], "author");
    claims["role"] = json!("admin");
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");

    assert_refused_everywhere(app, &format!("Bearer {tampered}")).await;
    let untouched = app.get("/api/v1/users/me", Some(&ada.token)).await;
    assert_eq!(
        untouched.status,
        StatusCode::OK,
        "the original token still works"
    );
}

/// Resets a password the way `feedgate user create` does for an existing user.
async fn reset_password(app: &TestApp, username: &str, password: &str) {
    let hash = app
        .state
        .auth
        .passwords
        .hash(password)
        .await
        .expect("a hashing slot");
    app.state
        .writer
        .upsert_user(username, &hash, Role::Author)
        .await
        .expect("the password is reset");
}

/// `feedgate user create` on an existing user resets the password: every
/// session of the old password ends.
async fn a_password_reset_ends_the_users_refresh_tokens(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let signed_in = app.sign_in(&ada.username, PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text());
    let old_refresh = signed_in.json()["refresh_token"].clone();

    reset_password(app, &ada.username, "a brand new passphrase").await;

    refresh(app, &old_refresh)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let fresh = app.sign_in(&ada.username, "a brand new passphrase").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());
    let renewed = refresh(app, &fresh.json()["refresh_token"]).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text());
}

/// Access tokens from before a reset stop working on the next request,
/// even while the user's record is cached; tokens signed in after work.
async fn an_access_token_from_before_a_password_reset_is_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let signed_in = app.sign_in(&ada.username, PASSWORD).await.json();
    let old = signed_in["access_token"].as_str().unwrap().to_owned();
    let now = get_current_timestamp();
    let minted = mint(TEST_KEY, &ada, "author", now, now + 600);
    for token in [&old, &ada.token, &minted] {
        let me = app.get("/api/v1/users/me", Some(token)).await;
        assert_eq!(me.status, StatusCode::OK, "precondition: {}", me.text());
    }

    reset_password(app, &ada.username, "a brand new passphrase").await;

    for token in [&old, &ada.token, &minted] {
        let me = app.get("/api/v1/users/me", Some(token)).await;
        let detail = me.problem(StatusCode::UNAUTHORIZED)["detail"].clone();
        assert!(
            detail.as_str().unwrap().contains("sign in again"),
            "{detail}"
        );
        assert_eq!(me.header("www-authenticate"), "Bearer");
        assert_refused_everywhere(app, &format!("Bearer {token}")).await;
    }
    let fresh = app.sign_in(&ada.username, "a brand new passphrase").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());
    let token = fresh.json()["access_token"].as_str().unwrap().to_owned();
    let me = app.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    let created = app
        .post(
            "/api/v1/articles",
            json!({"title": "After the reset", "body": "x"}),
            Some(&token),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
}

/// A sign-in that read the credentials, then verified the old password
/// while a reset committed, stores its refresh token after the reset's
/// deletion: the token carries the old version, so it is refused.
async fn a_refresh_token_issued_across_a_reset_is_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let read_before = app
        .state
        .store
        .find_credentials(&ada.username)
        .await
        .unwrap()
        .expect("ada exists");

    reset_password(app, &ada.username, "a brand new passphrase").await;
    let late = RefreshToken::generate();
    app.state
        .store
        .insert_refresh_token(ada.id, &late.hash, 600, read_before.token_version)
        .await
        .unwrap();

    refresh(app, &json!(late.token))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let fresh = app.sign_in(&ada.username, "a brand new passphrase").await;
    let renewed = refresh(app, &fresh.json()["refresh_token"]).await;
    assert_eq!(
        renewed.status,
        StatusCode::OK,
        "a refused stale token ends no newer session: {}",
        renewed.text()
    );
}

/// A genuine token whose user is not (or no longer) in the database is
/// refused before it reaches any handler.
async fn a_token_for_a_user_that_does_not_exist_is_refused(app: &TestApp) {
    let ghost = TestUser {
        id: 999_999,
        username: "ghost".into(),
        token: String::new(),
    };
    let now = get_current_timestamp();
    let token = mint(TEST_KEY, &ghost, "admin", now, now + 600);

    assert_refused_everywhere(app, &format!("Bearer {token}")).await;
}

/// A spent refresh token presented again has leaked: every session of the
/// user ends, the access tokens issued before included (not only the
/// refresh tokens), and signing in again works.
async fn reusing_a_spent_refresh_token_ends_the_access_tokens_issued_before(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let first = app.sign_in("ada", PASSWORD).await.json();
    let second = refresh(app, &first["refresh_token"]).await.json();
    let access = [&first, &second].map(|pair| pair["access_token"].as_str().unwrap().to_owned());
    for token in &access {
        let me = app.get("/api/v1/users/me", Some(token)).await;
        assert_eq!(me.status, StatusCode::OK, "precondition: {}", me.text());
    }

    let replay = refresh(app, &first["refresh_token"]).await;

    let detail = replay.problem(StatusCode::UNAUTHORIZED)["detail"].clone();
    assert!(detail.as_str().unwrap().contains("session"), "{detail}");
    for token in access.iter().chain([&ada.token]) {
        let me = app.get("/api/v1/users/me", Some(token)).await;
        assert!(
            me.problem(StatusCode::UNAUTHORIZED)["detail"]
                .as_str()
                .unwrap()
                .contains("sign in again"),
            "{}",
            me.text()
        );
        assert_refused_everywhere(app, &format!("Bearer {token}")).await;
    }
    let fresh = app.sign_in("ada", PASSWORD).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());
    let token = fresh.json()["access_token"].as_str().unwrap().to_owned();
    let me = app.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
}

/// The claims a token must have and what they may say: issued at (`iat`)
/// and valid from (`nbf`) not in the future beyond the clock skew allowed,
/// and a token version (`ver`, which every token the service issues has).
async fn tokens_from_the_future_or_without_a_version_are_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let now = get_current_timestamp();
    let claims = |changes: Value| {
        let mut claims = json!({
            "sub": ada.id.to_string(), "name": "ada", "role": "author", "ver": 0,
            "iss": "feedgate", "iat": now, "exp": now + 600, "jti": "claims-test",
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        sign(TEST_KEY, &claims)
    };
    for fine in [
        json!({}),
        json!({"nbf": now - 60}),
        json!({"iat": now - 300}),
        json!({"nbf": now + 2, "iat": now + 2}),
    ] {
        let me = app
            .get("/api/v1/users/me", Some(&claims(fine.clone())))
            .await;
        assert_eq!(me.status, StatusCode::OK, "{fine}: {}", me.text());
    }

    for refused in [
        json!({"nbf": now + 600}),
        json!({"iat": now + 600}),
        json!({"ver": null}),
        json!({"iat": null}),
        json!({"ver": "0"}),
    ] {
        let token = claims(refused.clone());
        let me = app.get("/api/v1/users/me", Some(&token)).await;
        assert_eq!(
            me.problem(StatusCode::UNAUTHORIZED)["detail"],
            "the access token is invalid",
            "{refused}"
        );
        assert_refused_everywhere(app, &format!("Bearer {token}")).await;
    }
}

/// Ends every session on every instance: another instance that holds the
/// user's record in its cache refuses the old access token too.
#[tokio::test]
async fn a_reused_refresh_token_ends_access_tokens_on_every_instance() {
    let redis = SharedRedis::new();
    let first = TestApp::with_settings(Backend::MySql, |s| redis.configure(s)).await;
    let second = first.sibling(|s| redis.configure(s)).await;
    for app in [&first, &second] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !app.state.cache.is_subscribed() {
            assert!(Instant::now() < deadline, "the instance subscribes");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    first.user("ada", Role::Author).await;
    let signed_in = first.sign_in("ada", PASSWORD).await.json();
    let access = signed_in["access_token"].as_str().unwrap().to_owned();
    let renewed = refresh(&first, &signed_in["refresh_token"]).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text());
    let warm = second.get("/api/v1/users/me", Some(&access)).await;
    assert_eq!(warm.status, StatusCode::OK, "precondition: {}", warm.text());

    refresh(&first, &signed_in["refresh_token"])
        .await
        .problem(StatusCode::UNAUTHORIZED);

    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let me = second.get("/api/v1/users/me", Some(&access)).await;
        if me.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance still takes the old access token 2 s later"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

on_both_backends!(
    reusing_a_spent_refresh_token_ends_the_access_tokens_issued_before,
    tokens_from_the_future_or_without_a_version_are_refused,
    a_password_reset_ends_the_users_refresh_tokens,
    an_access_token_from_before_a_password_reset_is_refused,
    a_token_for_a_user_that_does_not_exist_is_refused,
    a_refresh_token_issued_across_a_reset_is_refused,
    the_password_grant_issues_a_bearer_pair_that_is_never_cached,
    a_wrong_password_and_an_unknown_user_get_the_same_401,
    the_refresh_grant_issues_a_new_pair_that_works,
    a_refreshed_access_token_differs_from_the_one_it_replaces,
    reusing_a_spent_refresh_token_revokes_the_whole_family,
    an_unknown_refresh_token_is_401,
    an_unknown_grant_type_is_422,
    a_token_request_missing_fields_is_422,
    a_token_signed_with_another_key_is_refused,
    an_unsigned_alg_none_token_is_refused,
    an_expired_token_is_refused,
    a_malformed_token_is_refused,
    a_basic_authorization_header_is_refused,
    a_token_whose_role_claim_was_edited_is_refused,
);
