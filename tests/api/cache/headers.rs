//! HTTP caching headers: codings (brotli, gzip, identity), ETags and
//! If-None-Match / If-Match across codings, surrogate keys, and
//! Cache-Control.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use feedgate::domain::Role;
use serde_json::json;

use super::{ARTICLES, article_uri, get_with, gunzip, long_article, publish, unbrotli};
use crate::on_both_backends;
use crate::support::{TestApp, TestResponse};

async fn an_article_is_served_in_brotli_gzip_or_identity_as_accepted(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(long_article(app, &ada).await);
    let plain = get_with(app, &uri, &[]).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    assert!(
        plain.body.len() > 5000,
        "the body is {} bytes",
        plain.body.len()
    );

    let br = get_with(app, &uri, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(br.header("content-encoding"), "br");
    assert!(br.body.len() < plain.body.len());
    assert_eq!(unbrotli(&br.body), plain.body);

    let gzip = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzip.header("content-encoding"), "gzip");
    assert!(gzip.body.len() < plain.body.len());
    assert_eq!(gunzip(&gzip.body), plain.body);

    let identity = get_with(app, &uri, &[("accept-encoding", "identity")]).await;
    assert!(identity.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(identity.body, plain.body);

    for response in [&plain, &br, &gzip, &identity] {
        assert_eq!(response.header("vary"), "Accept-Encoding");
        assert_eq!(response.header("content-type"), "application/json");
    }
    let etags = [plain.header("etag"), br.header("etag"), gzip.header("etag")];
    assert_ne!(etags[0], etags[1]);
    assert_ne!(etags[0], etags[2]);
    assert_ne!(etags[1], etags[2]);
    assert_eq!(identity.header("etag"), etags[0]);
}

async fn if_none_match_with_any_codings_etag_or_its_weak_form_gets_304(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(long_article(app, &ada).await);
    let gzip = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    let br = get_with(app, &uri, &[("accept-encoding", "br")]).await;
    let gzip_etag = gzip.header("etag").to_owned();
    let weak = format!("W/{gzip_etag}");
    for (tag, coding) in [
        (gzip_etag.as_str(), "gzip"),
        (weak.as_str(), "gzip"),
        (br.header("etag"), "identity"),
        (gzip_etag.as_str(), "identity"),
    ] {
        let response = get_with(
            app,
            &uri,
            &[("if-none-match", tag), ("accept-encoding", coding)],
        )
        .await;
        assert_eq!(
            response.status,
            StatusCode::NOT_MODIFIED,
            "{tag} / {coding}"
        );
        assert!(response.body.is_empty());
    }
    let other = get_with(app, &uri, &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(other.status, StatusCode::OK);
}

/// `Accept-Encoding: br;q=0, *` refuses brotli explicitly (RFC 9110
/// 12.5.3: the wildcard covers only codings not listed).
async fn an_explicitly_refused_coding_is_not_served_even_when_a_wildcard_allows_others(
    app: &TestApp,
) {
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(long_article(app, &ada).await);
    let gzip = get_with(app, &uri, &[("accept-encoding", "br;q=0, gzip")]).await;
    assert_eq!(gzip.header("content-encoding"), "gzip");
    let wildcard = get_with(app, &uri, &[("accept-encoding", "br;q=0, *")]).await;
    assert_eq!(wildcard.status, StatusCode::OK);
    assert_ne!(
        wildcard
            .headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.as_bytes()),
        Some(&b"br"[..]),
        "brotli was served although the client refused it with q=0"
    );
}

/// The brief's contract: `If-Match` takes the ETag from a GET; a client
/// that accepts gzip sees the gzip variant's ETag.
async fn if_match_accepts_the_etag_a_compressed_read_returned(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let uri = article_uri(long_article(app, &ada).await);
    let read = get_with(app, &uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(read.header("content-encoding"), "gzip");
    let request = Request::patch(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", ada.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, read.header("etag"))
        .body(Body::from(json!({"title": "Edited"}).to_string()))
        .expect("a valid request");
    let patched = app.send(request).await;
    assert_eq!(
        patched.status,
        StatusCode::OK,
        "If-Match {} from the gzip GET: {}",
        read.header("etag"),
        patched.text()
    );
}

async fn surrogate_keys_name_the_article_on_reads_and_the_list_and_its_articles_on_lists(
    app: &TestApp,
) {
    let ada = app.user("ada", Role::Author).await;
    let rusty = publish(app, &ada, "Rusty", &["rust"]).await;
    let other = publish(app, &ada, "Other", &[]).await;
    let keys = |response: &TestResponse| -> (Vec<String>, Vec<String>) {
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let split = |name: &str, by: char| -> Vec<String> {
            response
                .header(name)
                .split(by)
                .map(|s| s.trim().to_owned())
                .collect()
        };
        (split("surrogate-key", ' '), split("cache-tag", ','))
    };

    let detail = keys(&app.get(&article_uri(rusty), None).await);
    for set in [&detail.0, &detail.1] {
        assert!(set.contains(&format!("article-{rusty}")), "{set:?}");
        assert!(!set.contains(&format!("article-{other}")), "{set:?}");
    }
    let list = keys(&app.get(ARTICLES, None).await);
    for set in [&list.0, &list.1] {
        assert!(set.contains(&"articles".to_owned()), "{set:?}");
        assert!(set.contains(&format!("article-{rusty}")), "{set:?}");
        assert!(set.contains(&format!("article-{other}")), "{set:?}");
    }
    let tagged = keys(&app.get(&format!("{ARTICLES}?tag=rust"), None).await);
    for set in [&tagged.0, &tagged.1] {
        assert!(set.contains(&"tag-rust".to_owned()), "{set:?}");
        assert!(set.contains(&format!("article-{rusty}")), "{set:?}");
        assert!(!set.contains(&format!("article-{other}")), "{set:?}");
    }

    // Every other public read names what a purge reaches it by.
    let comment = app
        .post(
            &format!("{}/comments", article_uri(rusty)),
            json!({"body": "Nice."}),
            Some(&ada.token),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.text());
    let comment_id = comment.json()["id"].as_i64().unwrap();
    let expected = [
        (
            format!("/api/v1/comments/{comment_id}"),
            vec![format!("comment-{comment_id}"), format!("article-{rusty}")],
        ),
        (
            format!("{}/comments", article_uri(rusty)),
            vec![format!("comments-{rusty}")],
        ),
        (
            format!("/api/v1/users/{}", ada.id),
            vec![format!("user-{}", ada.id)],
        ),
        ("/api/v1/tags".to_owned(), vec!["tags".to_owned()]),
    ];
    for (uri, wanted) in expected {
        let (surrogate, cache_tag) = keys(&app.get(&uri, None).await);
        for key in wanted {
            assert!(surrogate.contains(&key), "{uri}: {surrogate:?}");
            assert!(cache_tag.contains(&key), "{uri}: {cache_tag:?}");
        }
    }
}

async fn cache_control_is_the_configured_policy_on_public_reads_and_no_store_otherwise(
    app: &TestApp,
) {
    let control = app.state.settings.cache.control.clone();
    let ada = app.user("ada", Role::Author).await;
    let token = Some(ada.token.as_str());
    let id = publish(app, &ada, "Public", &["rust"]).await;
    let public = [
        (article_uri(id), &control.article),
        (ARTICLES.to_owned(), &control.articles),
        (format!("{}/comments", article_uri(id)), &control.comments),
        ("/api/v1/tags".to_owned(), &control.tags),
    ];
    for (uri, policy) in public {
        let response = app.get(&uri, None).await;
        assert_eq!(response.status, StatusCode::OK, "{uri}");
        assert_eq!(
            response.header("cache-control"),
            policy.to_str().unwrap(),
            "{uri}"
        );
    }

    let created = app
        .post(
            ARTICLES,
            json!({"title": "Draft", "body": "Not yet."}),
            token,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("cache-control"), "no-store");
    let draft = article_uri(created.json()["id"].as_i64().expect("an id"));
    for uri in [draft.clone(), format!("{ARTICLES}?status=draft")] {
        let response = app.get(&uri, token).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{uri}: {}",
            response.text()
        );
        assert_eq!(
            response.header("cache-control"),
            "private, no-store",
            "{uri}"
        );
    }
    app.get(&draft, None).await.problem(StatusCode::NOT_FOUND);
    let patched = app
        .patch(&article_uri(id), json!({"title": "Edited"}), token)
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.header("cache-control"), "no-store");
    let replaced = app
        .put(
            &draft,
            json!({"title": "Draft", "body": "Still not."}),
            token,
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.header("cache-control"), "no-store");
}

on_both_backends!(
    an_article_is_served_in_brotli_gzip_or_identity_as_accepted,
    if_none_match_with_any_codings_etag_or_its_weak_form_gets_304,
    an_explicitly_refused_coding_is_not_served_even_when_a_wildcard_allows_others,
    if_match_accepts_the_etag_a_compressed_read_returned,
    surrogate_keys_name_the_article_on_reads_and_the_list_and_its_articles_on_lists,
    cache_control_is_the_configured_policy_on_public_reads_and_no_store_otherwise,
);
