//! Read replicas on a real MariaDB primary and replica (`scripts/services.sh`):
//! where reads go, positions they wait for, and how replicas leave and
//! rejoin the rotation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use feedgate::domain::{ArticleContent, ArticleStatus, Role};
use feedgate::store::{Position, ReadTarget, ReplicaHealth};
use serde_json::json;

use crate::support::{ReplicaControl, SharedRedis, TestApp, replica_caught_up};

fn content(title: &str) -> ArticleContent {
    ArticleContent {
        slug: feedgate::domain::slugify(title),
        title: title.to_owned(),
        summary: String::new(),
        body: "Body.".to_owned(),
        status: ArticleStatus::Published,
        tags: Vec::new(),
    }
}

#[tokio::test]
async fn a_read_at_a_writes_position_runs_on_the_replica_once_it_has_applied_it() {
    let _replica = ReplicaControl::undisturbed().await;
    let app = TestApp::replicated(|_| {}).await;
    app.replicas_in_rotation().await;
    let ada = app.user("ada", Role::Author).await;
    let store = &app.state.store;
    let created = store
        .create_article(ada.id, &content("Hello"), true)
        .await
        .expect("the article is written");
    let position = created
        .position
        .expect("a MariaDB primary with a binary log has positions");
    assert!(replica_caught_up(Duration::from_secs(10)).await);

    let reads = store.replica_reads(Some(&position)).await;
    assert_eq!(reads.target(), ReadTarget::Replica);
    let found = reads.find_article(created.value.0.id).await.unwrap();
    assert_eq!(found.map(|a| a.title), Some("Hello".to_owned()));
}

#[tokio::test]
async fn a_read_that_a_stopped_replica_cannot_serve_goes_to_the_primary_and_the_replica_leaves_until_it_resumes()
 {
    let control = ReplicaControl::acquire().await;
    let app = TestApp::replicated(|_| {}).await;
    app.replicas_in_rotation().await;
    let ada = app.user("ada", Role::Author).await;
    let store = &app.state.store;

    control.stop_applying().await;
    let created = store
        .create_article(ada.id, &content("Lagged"), true)
        .await
        .unwrap();
    let position = created.position.unwrap();
    let reads = store.replica_reads(Some(&position)).await;
    assert_eq!(reads.target(), ReadTarget::PrimaryFallback);
    let found = reads.find_article(created.value.0.id).await.unwrap();
    assert_eq!(found.map(|a| a.title), Some("Lagged".to_owned()));
    app.replicas_become(ReplicaHealth::Stopped).await;

    control.resume_applying().await;
    app.replicas_in_rotation().await;
    assert!(replica_caught_up(Duration::from_secs(10)).await);
    let reads = store.replica_reads(Some(&position)).await;
    assert_eq!(reads.target(), ReadTarget::Replica);
    assert!(
        reads
            .find_article(created.value.0.id)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_replica_further_behind_than_the_limit_leaves_the_rotation_and_comes_back() {
    let control = ReplicaControl::acquire().await;
    let app = TestApp::replicated(|s| s.database.replica_max_lag_secs = 1).await;
    app.replicas_in_rotation().await;
    let ada = app.user("ada", Role::Author).await;

    control.delay(4).await;
    app.replicas_in_rotation().await;
    let created = app
        .state
        .store
        .create_article(ada.id, &content("Slow"), true)
        .await
        .unwrap();
    app.replicas_become(ReplicaHealth::Lagging).await;
    let reads = app
        .state
        .store
        .replica_reads(created.position.as_ref())
        .await;
    assert_eq!(reads.target(), ReadTarget::PrimaryFallback);

    app.replicas_in_rotation().await;
    assert!(replica_caught_up(Duration::from_secs(10)).await);
    let reads = app
        .state
        .store
        .replica_reads(created.position.as_ref())
        .await;
    assert_eq!(reads.target(), ReadTarget::Replica);
}

/// Two instances on the replicated pair sharing `redis`, both subscribed and
/// with the replica in rotation. The replica is checked once, at start: it
/// stays in rotation however far behind it falls, so only positions keep
/// old versions out.
async fn pair(redis: &SharedRedis) -> (TestApp, TestApp) {
    let a = TestApp::replicated(|s| {
        redis.configure(s);
        s.database.replica_check_ms = 3_600_000;
    })
    .await;
    let b = a.sibling(|_| {}).await;
    for app in [&a, &b] {
        subscribed(app).await;
        app.replicas_in_rotation().await;
    }
    (a, b)
}

async fn subscribed(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.state.cache.is_subscribed() {
        assert!(Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn reads_by(target: &str) -> f64 {
    let text = feedgate::metrics::handle().render();
    let needle = format!("feedgate_db_reads_total{{target=\"{target}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&needle))
        .map_or(0.0, |value| value.trim().parse().unwrap_or(0.0))
}

/// The status of a GET through `router`, from a task of its own.
async fn status_of(router: &axum::Router, uri: &str) -> StatusCode {
    let request = axum::http::Request::get(uri)
        .body(axum::body::Body::empty())
        .expect("a valid request");
    tower::ServiceExt::oneshot(router.clone(), request)
        .await
        .expect("the router is infallible")
        .status()
}

async fn title_of(app: &TestApp, uri: &str) -> String {
    let response = app.get(uri, None).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{uri}: {}",
        response.text()
    );
    let json = response.json();
    json["title"]
        .as_str()
        .or_else(|| json["items"][0]["title"].as_str())
        .unwrap_or_else(|| panic!("no title in {json}"))
        .to_owned()
}

#[tokio::test]
async fn after_a_write_no_instance_fills_the_old_version_from_a_replica_that_has_not_applied_it() {
    let control = ReplicaControl::acquire().await;
    let redis = SharedRedis::new();
    let (a, b) = pair(&redis).await;
    let ada = a.user("ada", Role::Author).await;
    let created = a
        .article(
            &ada,
            json!({"title": "Old", "body": "Body.", "status": "published", "tags": ["lag"]}),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let pages = [
        format!("/api/v1/articles/{id}"),
        "/api/v1/articles?tag=lag".to_owned(),
        "/api/v1/articles?author=ada".to_owned(),
    ];
    assert!(replica_caught_up(Duration::from_secs(10)).await);
    for app in [&a, &b] {
        for page in &pages {
            assert_eq!(title_of(app, page).await, "Old");
        }
    }
    let fallbacks = reads_by("primary_fallback");

    // The replica receives the write but does not apply it.
    control.stop_applying().await;
    let patched = a
        .patch(&pages[0], json!({"title": "New"}), Some(&ada.token))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());

    // The instance that acknowledged it never shows the old version.
    for page in &pages {
        assert_eq!(title_of(&a, page).await, "New", "{page} on the writer");
    }
    // The other shows the new one once it hears of the write, and from then
    // on never the old; nor does an instance that starts now.
    let c = a.sibling(|_| {}).await;
    subscribed(&c).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    for page in &pages {
        while title_of(&b, page).await != "New" {
            assert!(
                Instant::now() < deadline,
                "{page} never showed the write on B"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for _ in 0..20 {
        for app in [&a, &b, &c] {
            for page in &pages {
                assert_eq!(title_of(app, page).await, "New", "{page}");
            }
        }
    }
    assert!(
        reads_by("primary_fallback") > fallbacks,
        "the fills went to the primary"
    );

    // Once the replica applies it, fills go back to it.
    control.resume_applying().await;
    a.replicas_in_rotation().await;
    assert!(replica_caught_up(Duration::from_secs(10)).await);
    let replica_reads = reads_by("replica");
    let patched = a
        .patch(&pages[0], json!({"title": "Newer"}), Some(&ada.token))
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert!(replica_caught_up(Duration::from_secs(10)).await);
    assert_eq!(title_of(&b, &pages[1]).await, "Newer");
    assert!(
        reads_by("replica") > replica_reads,
        "a fill ran on the replica"
    );
}

#[tokio::test]
async fn fills_racing_a_write_on_a_lagging_replica_leave_no_old_version_in_either_tier() {
    let control = ReplicaControl::acquire().await;
    let redis = SharedRedis::new();
    let (a, _) = pair(&redis).await;
    // No L1 on B: each of its reads is an L2 lookup, then a fill.
    let b = a.sibling(|s| s.cache.l1_max_bytes = 0).await;
    subscribed(&b).await;
    let ada = a.user("ada", Role::Author).await;
    let created = a
        .article(
            &ada,
            json!({"title": "Old", "body": "Body.", "status": "published"}),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let uri = format!("/api/v1/articles/{id}");
    assert!(replica_caught_up(Duration::from_secs(10)).await);
    control.stop_applying().await;

    // B keeps reading while A writes.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let racing = {
        let (router, stop, reads, uri) =
            (b.router.clone(), stop.clone(), reads.clone(), uri.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(status_of(&router, &uri).await, StatusCode::OK);
                reads.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            reads.load(Ordering::Relaxed)
        })
    };
    until("B reads", || reads.load(Ordering::Relaxed) >= 10).await;
    let patched = a
        .patch(&uri, json!({"title": "New"}), Some(&ada.token))
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let before = reads.load(Ordering::Relaxed);
    until("B reads after the write", || {
        reads.load(Ordering::Relaxed) >= before + 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    assert!(racing.await.unwrap() > 1, "B raced the write");

    // What B left in L1, and what anyone left in L2, is the new version: a
    // fresh instance (empty L1) finds it in Redis or fills it anew.
    assert_eq!(title_of(&b, &uri).await, "New");
    let c = a.sibling(|_| {}).await;
    subscribed(&c).await;
    assert_eq!(title_of(&c, &uri).await, "New");
    // The write's position is in Redis beside its generation bump.
    let mut conn = redis.client().get_connection().unwrap();
    let shared: String = redis::cmd("GET")
        .arg(format!("{}:position", redis.prefix()))
        .query(&mut conn)
        .unwrap();
    let shared: Position = shared.parse().unwrap();
    assert!(shared.covers(&a.state.cache.highest_position()));
}

#[tokio::test]
async fn a_replica_killed_and_restarted_under_load_costs_no_request_and_rejoins() {
    let control = ReplicaControl::acquire().await;
    // The writer below writes for as long as the replica takes to restart,
    // past any per-user write budget.
    let app = TestApp::replicated(|settings| settings.rate_limit.enabled = false).await;
    app.replicas_in_rotation().await;
    let ada = app.user("ada", Role::Author).await;
    for n in 0..5 {
        app.article(
            &ada,
            json!({"title": format!("Article {n}"), "body": "Body.", "status": "published"}),
        )
        .await;
    }
    assert!(replica_caught_up(Duration::from_secs(10)).await);

    // Readers miss often: each asks for a page size of its own, and a
    // writer keeps making the lists stale.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for reader in 0..4 {
        let (router, stop) = (app.router.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0, 0);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let uri = format!("/api/v1/articles?per_page={}", 1 + (n * 4 + reader) % 100);
                if status_of(&router, &uri).await == StatusCode::OK {
                    ok += 1;
                } else {
                    failed += 1;
                }
                // Hits complete at once: let the test's own task run.
                tokio::task::yield_now().await;
            }
            (ok, failed)
        }));
    }
    let writer = {
        let (app_router, stop, token) = (app.router.clone(), stop.clone(), ada.token.clone());
        tokio::spawn(async move {
            let mut failed = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"title": format!("Written {n}"), "body": "Body.", "status": "published"});
                let request = axum::http::Request::post("/api/v1/articles")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap();
                let response = tower::ServiceExt::oneshot(app_router.clone(), request)
                    .await
                    .unwrap();
                if response.status() != StatusCode::CREATED {
                    failed.push(response.status());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            failed
        })
    };

    let replica_reads = reads_by("replica");
    until("reads on the replica", || {
        reads_by("replica") > replica_reads + 5.0
    })
    .await;
    let fallbacks = reads_by("primary_fallback");
    control.kill().await;
    app.replicas_become(ReplicaHealth::Down).await;
    until("reads fall back to the primary", || {
        reads_by("primary_fallback") > fallbacks
    })
    .await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    assert_eq!(ready.json()["status"], "ready");
    assert!(
        ready.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|check| check["name"] == "replica" && check["status"] == "down"),
        "{}",
        ready.text()
    );

    control.restart().await;
    app.replicas_in_rotation().await;
    let replica_reads = reads_by("replica");
    until("the replica takes reads again", || {
        reads_by("replica") > replica_reads + 5.0
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut served = 0;
    for reader in readers {
        let (ok, failed) = reader.await.unwrap();
        assert_eq!(failed, 0, "reads failed while the replica was down");
        served += ok;
    }
    assert_eq!(
        writer.await.unwrap(),
        Vec::<StatusCode>::new(),
        "writes failed"
    );
    assert!(served > 0);
}

/// Waits up to ten seconds for `done`, polling; fails the test naming
/// `what` if it never holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
