//! CDN purges: a write posts its surrogate keys to the purge URL, and
//! returns promptly when the endpoint hangs or refuses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use feedgate::domain::Role;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{article_uri, eventually, publish, title};
use crate::support::{Backend, Served, TestApp};

type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A purge endpoint on a free port that records every POST.
async fn purge_endpoint() -> (String, Received, Served) {
    let received: Received = Arc::default();
    async fn record(
        State(received): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        received.lock().unwrap().push((headers, json));
        StatusCode::NO_CONTENT
    }
    let router = Router::new()
        .route("/purge", post(record))
        .with_state(received.clone());
    let served = Served::start(router).await;
    (format!("http://{}/purge", served.addr), received, served)
}

#[tokio::test]
async fn a_write_posts_its_surrogate_keys_to_the_purge_url() {
    let (url, received, _server) = purge_endpoint().await;
    let app = TestApp::with_settings(Backend::MySql, |s| {
        s.cache.purge_url = Some(url.parse().unwrap())
    })
    .await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Purged", &["rust"]).await;
    let found = eventually(Duration::from_secs(2), async || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    assert!(found.is_some(), "the create was not purged");
    received.lock().unwrap().clear();

    let patched = app
        .patch(
            &article_uri(id),
            json!({"title": "Changed"}),
            Some(&ada.token),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let found = eventually(Duration::from_secs(2), async || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    assert!(found.is_some(), "no purge arrived within 2 s of the PATCH");
    let (headers, body) = received.lock().unwrap()[0].clone();
    let keys: Vec<&str> = body["surrogate_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no surrogate_keys in {body}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        format!("article-{id}"),
        "articles".into(),
        "tag-rust".into(),
        "author-ada".into(),
    ] {
        assert!(
            keys.contains(&expected.as_str()),
            "{expected} missing from {body}"
        );
    }
    let header_keys = headers
        .get("surrogate-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        header_keys.split(' ').any(|k| k == format!("article-{id}")),
        "{header_keys:?}"
    );
}

#[tokio::test]
async fn a_write_returns_promptly_when_the_purge_endpoint_hangs_or_refuses() {
    // Accepts connections and never answers.
    let hanging = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let hanging_url = format!("http://{}/purge", hanging.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            held.push(socket);
        }
    });
    let refused_url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        format!("http://{}/purge", listener.local_addr().unwrap())
    };
    let app = TestApp::with_settings(Backend::MySql, |s| {
        s.cache.purge_url = Some(hanging_url.parse().unwrap())
    })
    .await;
    let other = app
        .sibling(|s| s.cache.purge_url = Some(refused_url.parse().unwrap()))
        .await;
    let ada = app.user("ada", Role::Author).await;
    let id = publish(&app, &ada, "Written", &[]).await;

    for (name, instance) in [("hanging", &app), ("refusing", &other)] {
        let new_title = format!("Written past a {name} purge endpoint");
        let started = Instant::now();
        let patched = instance
            .patch(
                &article_uri(id),
                json!({"title": new_title}),
                Some(&ada.token),
            )
            .await;
        let took = started.elapsed();
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        assert!(
            took < Duration::from_secs(1),
            "{name}: the write waited {took:?} for the purge"
        );
        assert_eq!(
            title(&instance.get(&article_uri(id), None).await),
            new_title
        );
    }
}
