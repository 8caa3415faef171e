//! Compressed variants are made when a client first asks for them, not
//! when a miss fills the cache: a fill encodes JSON only, each coding is
//! compressed once per entry and shared by every later request, a 304
//! compresses nothing, and Redis carries the body alone.

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use feedgate::cache::Coding;
use feedgate::domain::Role;
use serde_json::json;

use super::{
    ARTICLES, article_uri, get_with, gunzip, long_article, redis_app, redis_sibling, unbrotli,
};
use crate::on_both_backends;
use crate::support::{SharedRedis, TestApp};

/// The variant of `coding` that the cached entry of article `id` holds now
/// (a hit: peeking makes nothing).
async fn made(app: &TestApp, id: i64, coding: Coding) -> Option<Bytes> {
    let cached = app
        .state
        .reader
        .article(id)
        .await
        .expect("the article reads");
    let entry = cached.entry.as_ref().expect("the article exists");
    entry.made(coding).cloned()
}

/// `"abc"` and a coding name: `"abc-br"`, the ETag of that coding's variant.
fn etag_of(identity: &str, coding: &str) -> String {
    format!("{}-{coding}\"", identity.trim_end_matches('"'))
}

async fn a_fill_compresses_nothing_and_each_coding_is_made_once_by_the_first_request_for_it(
    app: &TestApp,
) {
    let ada = app.user("ada", Role::Author).await;
    let id = long_article(app, &ada).await;
    let uri = article_uri(id);
    let plain = get_with(app, &uri, &[]).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    assert_eq!(
        made(app, id, Coding::Gzip).await,
        None,
        "the fill made gzip"
    );
    assert_eq!(
        made(app, id, Coding::Brotli).await,
        None,
        "the fill made brotli"
    );

    let gzip = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzip.header("content-encoding"), "gzip");
    assert_eq!(gunzip(&gzip.body), plain.body);
    let made_gzip = made(app, id, Coding::Gzip).await.expect("gzip was made");
    assert_eq!(made_gzip, gzip.body);
    assert_eq!(
        made(app, id, Coding::Brotli).await,
        None,
        "gzip made brotli"
    );

    let br = get_with(app, &uri, &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(br.header("content-encoding"), "br");
    assert_eq!(unbrotli(&br.body), plain.body);
    let made_br = made(app, id, Coding::Brotli)
        .await
        .expect("brotli was made");
    assert_eq!(made_br, br.body);

    // Later requests share what the first made: the same bytes in memory.
    for (coding, first) in [("br", &made_br), ("gzip", &made_gzip)] {
        let again = get_with(app, &uri, &[("accept-encoding", coding)]).await;
        assert_eq!(again.header("content-encoding"), coding);
        assert_eq!(&again.body, first);
    }
    let gzip_now = made(app, id, Coding::Gzip).await.expect("still made");
    let br_now = made(app, id, Coding::Brotli).await.expect("still made");
    assert_eq!(gzip_now.as_ptr(), made_gzip.as_ptr(), "gzip was made again");
    assert_eq!(br_now.as_ptr(), made_br.as_ptr(), "brotli was made again");

    let identity = plain.header("etag");
    assert_eq!(gzip.header("etag"), etag_of(identity, "gzip"));
    assert_eq!(br.header("etag"), etag_of(identity, "br"));
}

async fn a_304_compresses_nothing_and_names_the_coding_it_stands_for(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = long_article(app, &ada).await;
    let uri = article_uri(id);
    let plain = get_with(app, &uri, &[]).await;
    let identity = plain.header("etag").to_owned();
    for (coding, expected) in [
        ("br", etag_of(&identity, "br")),
        ("gzip", etag_of(&identity, "gzip")),
        ("identity", identity.clone()),
    ] {
        for tag in [identity.clone(), format!("W/{expected}")] {
            let revalidated = get_with(
                app,
                &uri,
                &[("if-none-match", &tag), ("accept-encoding", coding)],
            )
            .await;
            assert_eq!(
                revalidated.status,
                StatusCode::NOT_MODIFIED,
                "{tag} / {coding}"
            );
            assert!(revalidated.body.is_empty());
            assert_eq!(revalidated.header("etag"), expected, "{tag} / {coding}");
        }
    }
    assert_eq!(made(app, id, Coding::Gzip).await, None, "a 304 made gzip");
    assert_eq!(
        made(app, id, Coding::Brotli).await,
        None,
        "a 304 made brotli"
    );
    // The 200 that follows carries the ETag the 304s named.
    let br = get_with(app, &uri, &[("accept-encoding", "br")]).await;
    assert_eq!(br.header("etag"), etag_of(&identity, "br"));
}

async fn if_match_takes_any_codings_etag_or_the_version_and_refuses_an_older_one(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let id = long_article(app, &ada).await;
    let uri = article_uri(id);
    let patch = |if_match: String, title: &str| {
        Request::patch(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", ada.token))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, if_match)
            .body(Body::from(json!({"title": title}).to_string()))
            .expect("a valid request")
    };
    let br = get_with(app, &uri, &[("accept-encoding", "br")]).await;
    let old = br.header("etag").to_owned();
    let first = app.send(patch(old.clone(), "With the brotli ETag")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    let stale = app.send(patch(old, "With an older ETag")).await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.text()
    );

    let version = first.json()["version"].as_i64().expect("a version");
    let by_version = app
        .send(patch(format!("\"{version}\""), "By version"))
        .await;
    assert_eq!(by_version.status, StatusCode::OK, "{}", by_version.text());

    let gzip = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    let read: serde_json::Value = serde_json::from_slice(&gunzip(&gzip.body)).expect("JSON");
    assert_eq!(read["title"], "By version");
    let weak = format!("W/{}", gzip.header("etag"));
    let refused = app.send(patch(weak, "With a weak ETag")).await;
    assert_eq!(
        refused.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        refused.text()
    );
    let by_gzip_etag = app
        .send(patch(gzip.header("etag").to_owned(), "Done"))
        .await;
    assert_eq!(
        by_gzip_etag.status,
        StatusCode::OK,
        "{}",
        by_gzip_etag.text()
    );
}

/// Redis holds the body alone; an instance that takes an entry from Redis
/// makes the variants its clients ask for, byte for byte those the first
/// instance made, under the same ETags, without a database load.
#[tokio::test]
async fn variants_are_made_per_instance_from_the_body_redis_carries() {
    let redis = SharedRedis::new();
    let a = redis_app(&redis).await;
    let b = redis_sibling(&a, &redis).await;
    let ada = a.user("ada", Role::Author).await;
    let id = long_article(&a, &ada).await;
    let uri = article_uri(id);
    let mut from_a = Vec::new();
    for coding in ["identity", "gzip", "br"] {
        from_a.push(get_with(&a, &uri, &[("accept-encoding", coding)]).await);
    }
    assert!(made(&a, id, Coding::Brotli).await.is_some());

    let loads = b.state.cache.loads();
    assert_eq!(made(&b, id, Coding::Gzip).await, None, "Redis carried gzip");
    assert_eq!(
        made(&b, id, Coding::Brotli).await,
        None,
        "Redis carried brotli"
    );
    for (coding, first) in ["identity", "gzip", "br"].into_iter().zip(&from_a) {
        let response = get_with(&b, &uri, &[("accept-encoding", coding)]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.body, first.body, "{coding}");
        assert_eq!(response.header("etag"), first.header("etag"), "{coding}");
    }
    assert_eq!(
        b.state.cache.loads(),
        loads,
        "B loaded the article from the database"
    );
    assert!(made(&b, id, Coding::Brotli).await.is_some());
}

/// Every list shape is compressed on request too, and decompresses to the
/// identity body.
async fn list_pages_are_compressed_on_request(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    for _ in 0..3 {
        long_article(app, &ada).await;
    }
    let uri = format!("{ARTICLES}?tag=rust");
    let plain = get_with(app, &uri, &[]).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    let gzip = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gunzip(&gzip.body), plain.body);
    let br = get_with(app, &uri, &[("accept-encoding", "br")]).await;
    assert_eq!(br.header("content-encoding"), "br");
    assert_eq!(unbrotli(&br.body), plain.body);
}

on_both_backends!(
    a_fill_compresses_nothing_and_each_coding_is_made_once_by_the_first_request_for_it,
    a_304_compresses_nothing_and_names_the_coding_it_stands_for,
    if_match_takes_any_codings_etag_or_the_version_and_refuses_an_older_one,
    list_pages_are_compressed_on_request,
);
