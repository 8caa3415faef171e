//! Read replicas on a real MariaDB primary and replica (`scripts/services.sh`):
//! where reads go, positions they wait for, and how replicas leave and
//! rejoin the rotation.

use std::time::Duration;

use feedgate::domain::{ArticleContent, ArticleStatus, Role};
use feedgate::store::{ReadTarget, ReplicaHealth};

use crate::support::{ReplicaControl, TestApp, replica_caught_up};

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
    let found = reads.find_article(created.value.id).await.unwrap();
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
    let found = reads.find_article(created.value.id).await.unwrap();
    assert_eq!(found.map(|a| a.title), Some("Lagged".to_owned()));
    app.replicas_become(ReplicaHealth::Stopped).await;

    control.resume_applying().await;
    app.replicas_in_rotation().await;
    assert!(replica_caught_up(Duration::from_secs(10)).await);
    let reads = store.replica_reads(Some(&position)).await;
    assert_eq!(reads.target(), ReadTarget::Replica);
    assert!(
        reads
            .find_article(created.value.id)
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
