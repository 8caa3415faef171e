//! Authorization follows the user's record through the cache: a role change
//! or a password reset made anywhere (another instance, the command line)
//! reaches every instance's cached copy of the record within the
//! cross-instance bound, while a warm record costs no database load.

use std::process::Command;
use std::time::Duration;

use axum::http::StatusCode;
use feedgate::domain::Role;
use serde_json::json;

use super::{ARTICLES, app_behind_proxy, article_uri, eventually, redis_app, redis_sibling};
use crate::support::{PASSWORD, SharedRedis, mysql_proxy};

/// The user's record is read through the cache: once warm, a signed-in
/// request needs no database for it. With the database cut off, a
/// signed-in read of a cached draft still answers (and a cold record is a
/// fast 503, not a 500).
#[tokio::test]
async fn a_signed_in_request_with_a_warm_record_needs_no_database() {
    let proxy = mysql_proxy().await;
    let app = app_behind_proxy(&proxy, |_| {}).await;
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let draft = app
        .article(&ada, json!({"title": "Draft", "body": "Unfinished."}))
        .await;
    let uri = article_uri(draft["id"].as_i64().unwrap());
    let warm = app.get(&uri, Some(&ada.token)).await;
    assert_eq!(warm.status, StatusCode::OK, "{}", warm.text());

    proxy.cut();
    let read = app.get(&uri, Some(&ada.token)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.body, warm.body);
    let cold = app.get(&uri, Some(&bob.token)).await;
    assert_eq!(
        cold.problem(StatusCode::SERVICE_UNAVAILABLE)["code"],
        "unavailable"
    );
}

#[tokio::test]
async fn a_demotion_on_one_instance_is_enforced_on_the_other_within_milliseconds() {
    let redis = SharedRedis::new();
    let a = redis_app(&redis).await;
    let b = redis_sibling(&a, &redis).await;
    let admin = a.user("root", Role::Admin).await;
    let ed = a.user("ed", Role::Editor).await;
    let ada = a.user("ada", Role::Author).await;
    let draft = a
        .article(&ada, json!({"title": "Draft", "body": "Unfinished."}))
        .await;
    let draft_uri = article_uri(draft["id"].as_i64().unwrap());
    let published = a
        .article(
            &ada,
            json!({"title": "Ada's", "body": "Hers.", "status": "published"}),
        )
        .await;
    let published_uri = article_uri(published["id"].as_i64().unwrap());
    // An editor sees others' drafts: a read whose answer follows the role.
    let seen = b.get(&draft_uri, Some(&ed.token)).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text());
    let loads = b.state.cache.loads();
    let again = b.get(&draft_uri, Some(&ed.token)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(
        b.state.cache.loads(),
        loads,
        "precondition: B holds the editor's record and the draft in its cache"
    );

    let demoted = a.set_role(&admin, ed.id, "author").await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());

    let delay = eventually(Duration::from_secs(2), async || {
        b.get(&draft_uri, Some(&ed.token)).await.status == StatusCode::NOT_FOUND
    })
    .await;
    eprintln!("cross-instance delay of a demotion: {delay:?}");
    assert!(
        delay.is_some(),
        "B still let the demoted editor see others' drafts 2 s after the change"
    );
    let edit = b
        .patch(&published_uri, json!({"title": "Edited"}), Some(&ed.token))
        .await;
    edit.problem(StatusCode::FORBIDDEN);
    let signed_in = b.sign_in("ed", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text());
    let token = signed_in.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = b.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["role"], "author");
}

/// `feedgate user create` for an existing user, run as a separate process
/// the way operators run it, ends the sessions a running instance is
/// serving from its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_from_the_command_line_ends_sessions_on_running_instances() {
    let redis = SharedRedis::new();
    let app = redis_app(&redis).await;
    app.user("ada", Role::Author).await;
    let tokens = app.sign_in("ada", PASSWORD).await.json();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let draft = json!({"title": "Mine", "body": "x"});
    let created = app.post(ARTICLES, draft.clone(), Some(&access)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let loads = app.state.cache.loads();
    let me = app.get("/api/v1/users/me", Some(&access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(
        app.state.cache.loads(),
        loads,
        "precondition: the instance holds ada's record in its cache"
    );

    let settings = &app.state.settings;
    let env = [
        ("DATABASE_URL", settings.database.url.expose().to_owned()),
        ("REDIS_URL", settings.redis.url.expose().to_owned()),
        (
            "FEEDGATE_CACHE__REDIS_PREFIX",
            settings.cache.redis_prefix.clone(),
        ),
        (
            "FEEDGATE_JWT_SECRET",
            settings.auth.jwt_secret.expose().to_owned(),
        ),
        ("FEEDGATE_AUTH__ARGON2_MEMORY_KIB", "64".to_owned()),
        ("FEEDGATE_AUTH__ARGON2_ITERATIONS", "1".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_feedgate"))
            .env_clear()
            .envs(env)
            .args(["user", "create", "--username", "ada"])
            .args(["--password", "a brand new passphrase", "--role", "author"])
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let delay = eventually(Duration::from_secs(2), async || {
        app.get("/api/v1/users/me", Some(&access)).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("delay from the command line to the running instance: {delay:?}");
    assert!(
        delay.is_some(),
        "the instance still accepted the old access token 2 s after the reset"
    );
    let write = app.post(ARTICLES, draft, Some(&access)).await;
    write.problem(StatusCode::UNAUTHORIZED);
    let body = json!({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]});
    let refreshed = app.post("/api/v1/tokens", body, None).await;
    refreshed.problem(StatusCode::UNAUTHORIZED);
    let fresh = app.sign_in("ada", "a brand new passphrase").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());
    let token = fresh.json()["access_token"].as_str().unwrap().to_owned();
    let me = app.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
}
