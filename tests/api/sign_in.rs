//! Sign-in abuse: one canonical form of a username for sign-up, sign-in and
//! the per-username budgets; guessing stopped without locking the real user
//! out; refusals that checked nothing spend nothing; budgets that keep
//! counting while Redis is away.

use axum::http::{Method, StatusCode};
use feedgate::config::Secret;
use feedgate::domain::Role;
use serde_json::json;

use crate::migration::database_at;
use crate::ratelimit::{assert_limited, from, generous, per_minute};
use crate::support::{
    Backend, PASSWORD, SharedRedis, TcpProxy, TestApp, TestResponse, shared_redis_url,
};

/// `POST /tokens` with the password grant from `peer`.
async fn sign_in_from(app: &TestApp, peer: &str, username: &str, password: &str) -> TestResponse {
    let body = json!({"grant_type": "password", "username": username, "password": password});
    from(app, peer, Method::POST, "/api/v1/tokens", Some(body), None).await
}

/// The access token of a successful sign-in.
fn token_of(response: &TestResponse) -> String {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

async fn username_of(app: &TestApp, token: &str) -> String {
    let me = app.get("/api/v1/users/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    me.json()["username"].as_str().unwrap().to_owned()
}

/// Spellings that Unicode, a collation or a trimming would take for `bf3`.
const LOOK_ALIKES: [&str; 7] = [
    "bf3 ",
    "bf3   ",
    "BF3",
    "\u{FF42}\u{FF46}\u{FF13}",
    "bf3\u{00A0}",
    "bf3\u{0000}",
    "b\u{200B}f3",
];

/// Once `bf3`'s budget is spent, no other spelling of it has a budget of
/// its own, whichever way the database compares names.
async fn look_alike_spellings_share_the_usernames_budget(backend: Backend) {
    let app = TestApp::with_settings(backend, |s| {
        generous(s);
        s.rate_limit.token_username = per_minute(2);
    })
    .await;
    app.user("bf3", Role::Author).await;
    for peer in ["198.51.100.1:1", "198.51.100.2:1"] {
        sign_in_from(&app, peer, "bf3", "a wrong guess")
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }

    for (n, spelling) in LOOK_ALIKES.into_iter().enumerate() {
        let peer = format!("203.0.113.{}:1", n + 1);
        let response = sign_in_from(&app, &peer, spelling, PASSWORD).await;
        assert_eq!(
            response.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{spelling:?} has a budget of its own: {}",
            response.text()
        );
    }
}

#[tokio::test]
async fn look_alike_spellings_share_the_usernames_budget_on_sqlite() {
    look_alike_spellings_share_the_usernames_budget(Backend::Sqlite).await;
}

#[tokio::test]
async fn look_alike_spellings_share_the_usernames_budget_on_mysql() {
    look_alike_spellings_share_the_usernames_budget(Backend::MySql).await;
}

/// Every spelling with the canonical form of a registered name reaches
/// that account, on both backends alike; other names reach nothing.
async fn a_spelling_signs_in_as_the_account_with_its_canonical_form(backend: Backend) {
    let app = TestApp::with_settings(backend, generous).await;
    app.user("bf3", Role::Author).await;
    app.user("Ada_Lovelace", Role::Author).await;

    for (n, spelling) in LOOK_ALIKES.into_iter().enumerate() {
        let peer = format!("203.0.113.{}:1", n + 1);
        let response = sign_in_from(&app, &peer, spelling, PASSWORD).await;
        let token = token_of(&response);
        assert_eq!(username_of(&app, &token).await, "bf3", "{spelling:?}");
    }
    let response = sign_in_from(&app, "203.0.113.50:1", "ada_lovelace ", PASSWORD).await;
    let token = token_of(&response);
    assert_eq!(username_of(&app, &token).await, "Ada_Lovelace");
    for other in ["bf 3", "bf3x", "bf", "b.f3"] {
        sign_in_from(&app, "203.0.113.60:1", other, PASSWORD)
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_spelling_signs_in_as_the_account_with_its_canonical_form_on_sqlite() {
    a_spelling_signs_in_as_the_account_with_its_canonical_form(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_spelling_signs_in_as_the_account_with_its_canonical_form_on_mysql() {
    a_spelling_signs_in_as_the_account_with_its_canonical_form(Backend::MySql).await;
}

/// Sign-up takes only plain names, and a name whose canonical form is
/// taken is taken.
async fn sign_up_refuses_invisible_characters_and_taken_canonical_forms(backend: Backend) {
    let app = TestApp::with_settings(backend, generous).await;
    let register = |username: &'static str| {
        app.post(
            "/api/v1/users",
            json!({"username": username, "password": PASSWORD}),
            None,
        )
    };
    let created = register("Bf3").await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["username"], "Bf3", "the case given is shown");

    for odd in LOOK_ALIKES
        .iter()
        .filter(|s| !s.is_ascii() || s.contains(' '))
    {
        let response = app
            .post(
                "/api/v1/users",
                json!({"username": odd, "password": PASSWORD}),
                None,
            )
            .await;
        let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], "username", "{odd:?}");
    }
    for taken in ["bf3", "BF3"] {
        register(taken).await.problem(StatusCode::CONFLICT);
    }
    let response = sign_in_from(&app, "203.0.113.1:1", "\u{FF42}\u{FF46}\u{FF13}", PASSWORD).await;
    let token = token_of(&response);
    assert_eq!(username_of(&app, &token).await, "Bf3");
}

#[tokio::test]
async fn sign_up_refuses_invisible_characters_and_taken_canonical_forms_on_sqlite() {
    sign_up_refuses_invisible_characters_and_taken_canonical_forms(Backend::Sqlite).await;
}

#[tokio::test]
async fn sign_up_refuses_invisible_characters_and_taken_canonical_forms_on_mysql() {
    sign_up_refuses_invisible_characters_and_taken_canonical_forms(Backend::MySql).await;
}

/// Ten wrong passwords from ten addresses (the shipped limits) do not keep
/// the real user, from an address of their own, out.
async fn wrong_passwords_from_many_clients_do_not_lock_the_user_out(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.user("target1", Role::Author).await;
    for n in 1..=10 {
        let peer = format!("198.51.100.{n}:4000");
        sign_in_from(&app, &peer, "target1", "a wrong guess")
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }

    let response = sign_in_from(&app, "203.0.113.200:4000", "target1", PASSWORD).await;

    token_of(&response);
}

#[tokio::test]
async fn wrong_passwords_from_many_clients_do_not_lock_the_user_out_on_sqlite() {
    wrong_passwords_from_many_clients_do_not_lock_the_user_out(Backend::Sqlite).await;
}

#[tokio::test]
async fn wrong_passwords_from_many_clients_do_not_lock_the_user_out_on_mysql() {
    wrong_passwords_from_many_clients_do_not_lock_the_user_out(Backend::MySql).await;
}

/// Once guesses from everywhere have spent a username's budget, guessing
/// stops (even the right password from a new client is refused), but a
/// client the user signed in from before still gets in with the right
/// password, and its wrong ones still count against it alone.
async fn under_attack_a_known_client_still_signs_in(backend: Backend) {
    let app = TestApp::with_settings(backend, |s| {
        generous(s);
        s.rate_limit.token_username = per_minute(4);
        s.rate_limit.token_username_client = per_minute(3);
    })
    .await;
    app.user("target1", Role::Author).await;
    let home = "192.0.2.10:5000";
    token_of(&sign_in_from(&app, home, "target1", PASSWORD).await);

    let mut refused = 0;
    for n in 1..=20 {
        let peer = format!("198.51.100.{n}:4000");
        let response = sign_in_from(&app, &peer, "target1", "a wrong guess").await;
        if response.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        } else {
            response.problem(StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(refused, 17, "the shared budget had 3 guesses left");
    assert_limited(
        &sign_in_from(&app, "203.0.113.7:1", "target1", PASSWORD).await,
        4,
    );

    // The same address on another port is the same client.
    let response = sign_in_from(&app, "192.0.2.10:6000", "target1", PASSWORD).await;
    token_of(&response);
    sign_in_from(&app, home, "target1", "a wrong guess")
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_limited(&sign_in_from(&app, home, "target1", PASSWORD).await, 3);
}

#[tokio::test]
async fn under_attack_a_known_client_still_signs_in_on_sqlite() {
    under_attack_a_known_client_still_signs_in(Backend::Sqlite).await;
}

#[tokio::test]
async fn under_attack_a_known_client_still_signs_in_on_mysql() {
    under_attack_a_known_client_still_signs_in(Backend::MySql).await;
}

/// One client guessing one username runs out of its own budget; other
/// clients keep theirs, and its refusals take nothing from them.
#[tokio::test]
async fn one_client_guessing_spends_only_its_own_budget() {
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.token_username = per_minute(3);
        s.rate_limit.token_username_client = per_minute(2);
    })
    .await;
    app.user("ada", Role::Author).await;
    let guesser = "198.51.100.9:1";
    for _ in 0..2 {
        sign_in_from(&app, guesser, "ada", "a wrong guess")
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
    for _ in 0..5 {
        assert_limited(&sign_in_from(&app, guesser, "ada", PASSWORD).await, 2);
    }

    let response = sign_in_from(&app, "203.0.113.9:1", "ada", PASSWORD).await;

    token_of(&response);
}

/// Sign-ins turned away because every hashing place was taken checked no
/// password: they leave the user's budget as it was.
async fn sign_ins_turned_away_busy_spend_no_budget(backend: Backend) {
    let app = TestApp::with_settings(backend, |s| {
        generous(s);
        s.rate_limit.token_username = per_minute(2);
        s.auth.hash_concurrency = 1;
        s.auth.hash_queue = 0;
    })
    .await;
    app.user("ada", Role::Author).await;
    let flood = app.state.auth.passwords.reserve().expect("the only place");
    for n in 1..=5 {
        let peer = format!("198.51.100.{n}:1");
        let response = sign_in_from(&app, &peer, "ada", PASSWORD).await;
        let problem = response.problem(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(problem["code"], "busy");
    }
    drop(flood);

    let response = sign_in_from(&app, "203.0.113.1:1", "ada", PASSWORD).await;

    token_of(&response);
}

#[tokio::test]
async fn sign_ins_turned_away_busy_spend_no_budget_on_sqlite() {
    sign_ins_turned_away_busy_spend_no_budget(Backend::Sqlite).await;
}

#[tokio::test]
async fn sign_ins_turned_away_busy_spend_no_budget_on_mysql() {
    sign_ins_turned_away_busy_spend_no_budget(Backend::MySql).await;
}

/// While Redis is unreachable, an instance goes on from what it counted
/// itself through Redis, instead of from a full bucket.
#[tokio::test]
async fn while_redis_is_away_the_shared_budget_goes_on_from_what_the_instance_counted() {
    let redis = SharedRedis::new();
    let url = shared_redis_url();
    let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let proxy = TcpProxy::start(authority.split('/').next().unwrap_or(authority)).await;
    let app = TestApp::with_settings(Backend::Sqlite, |s| {
        generous(s);
        s.rate_limit.token_client = per_minute(3);
        redis.configure(s);
        s.redis.url = Secret::new(proxy.rewrite(&url));
        s.cache.redis_timeout_ms = 300;
    })
    .await;
    let client = "192.0.2.99:1";
    for _ in 0..2 {
        sign_in_from(&app, client, "ada", "a wrong guess")
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }

    proxy.cut();

    sign_in_from(&app, client, "ada", "a wrong guess")
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_limited(&sign_in_from(&app, client, "ada", "a wrong guess").await, 3);
}

/// The last migration before canonical usernames.
const BEFORE_CANONICAL_NAMES: i64 = 20261126000002;

/// Accounts written before canonical keys existed (or by an older version
/// still running beside a newer one) sign in by their canonical form; of
/// two old accounts with one canonical form, the older keeps it.
async fn accounts_from_before_canonical_names_sign_in_by_their_canonical_form(backend: Backend) {
    let (db, pool) = database_at(backend, BEFORE_CANONICAL_NAMES).await;
    let hash = feedgate::auth::Passwords::new(
        64,
        1,
        feedgate::auth::HashPool {
            concurrency: 1,
            queue: 0,
        },
    )
    .hash_blocking(PASSWORD);
    let mut names = vec![(1, "Legacy_Ada"), (2, "bob")];
    if backend == Backend::Sqlite {
        // NOCASE folds ASCII only: this was a second account.
        names.push((3, "\u{FF42}ob"));
    }
    let insert = "INSERT INTO users (id, username, password_hash, role, created_at, updated_at) \
                  VALUES (?, ?, ?, 'author', 1, 1)";
    for (id, name) in &names {
        sqlx::query(insert)
            .bind(id)
            .bind(name)
            .bind(&hash)
            .execute(&pool)
            .await
            .expect("an old account");
    }
    let app = TestApp::on_database(db).await;

    let token = token_of(&sign_in_from(&app, "192.0.2.1:1", "legacy_ada", PASSWORD).await);
    assert_eq!(username_of(&app, &token).await, "Legacy_Ada");
    let token = token_of(&sign_in_from(&app, "192.0.2.1:1", "\u{FF42}ob", PASSWORD).await);
    assert_eq!(username_of(&app, &token).await, "bob", "the older account");

    // Written by an older version after the upgrade: no key yet.
    sqlx::query(insert)
        .bind(10)
        .bind("Late_Comer")
        .bind(&hash)
        .execute(&pool)
        .await
        .expect("an account without a key");
    let token = token_of(&sign_in_from(&app, "192.0.2.1:1", "late_comer ", PASSWORD).await);
    assert_eq!(username_of(&app, &token).await, "Late_Comer");
    app.post(
        "/api/v1/users",
        json!({"username": "LATE_COMER", "password": PASSWORD}),
        None,
    )
    .await
    .problem(StatusCode::CONFLICT);
    pool.close().await;
}

#[tokio::test]
async fn accounts_from_before_canonical_names_sign_in_by_their_canonical_form_on_sqlite() {
    accounts_from_before_canonical_names_sign_in_by_their_canonical_form(Backend::Sqlite).await;
}

#[tokio::test]
async fn accounts_from_before_canonical_names_sign_in_by_their_canonical_form_on_mysql() {
    accounts_from_before_canonical_names_sign_in_by_their_canonical_form(Backend::MySql).await;
}
