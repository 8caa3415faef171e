//! Tests for articles: create, read, list, update and delete.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use feedgate::domain::{ArticleSort, Role};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection};

use crate::on_both_backends;
use crate::support::{TestApp, TestResponse, TestUser, json_request};

const ARTICLES: &str = "/api/v1/articles";

fn path_of(article: &Value) -> String {
    format!("{ARTICLES}/{}", article["id"])
}

fn ids(list: &Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .map(|item| item["id"].as_i64().expect("an item has an id"))
        .collect()
}

fn id_of(article: &Value) -> i64 {
    article["id"].as_i64().expect("an article has an id")
}

/// `/api/v1/articles?<params>`, percent-encoded.
fn list_uri(params: &[(&str, &str)]) -> String {
    format!(
        "{ARTICLES}?{}",
        serde_urlencoded::to_string(params).expect("params encode")
    )
}

fn assert_iso8601_utc(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(text.ends_with('Z'), "{text}");
    assert_eq!(text.len(), "2024-05-20T12:34:56Z".len(), "{text}");
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|err| panic!("{text}: {err}"));
}

/// A request with one extra header (`If-Match`, `If-None-Match`).
async fn send_with(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<Value>,
    user: Option<&TestUser>,
    extra: (header::HeaderName, &str),
) -> TestResponse {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(extra.0, extra.1);
    if let Some(user) = user {
        request = request.header(header::AUTHORIZATION, format!("Bearer {}", user.token));
    }
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    app.send(request.body(body).unwrap()).await
}

/// Sets an article's times (epoch milliseconds) directly in the database.
async fn set_times(app: &TestApp, id: i64, created: i64, updated: i64, published: Option<i64>) {
    let mut conn = AnyConnection::connect(app.db.url())
        .await
        .expect("the test database accepts connections");
    sqlx::query(
        "UPDATE articles SET created_at = ?, updated_at = ?, published_at = ? WHERE id = ?",
    )
    .bind(created)
    .bind(updated)
    .bind(published)
    .bind(id)
    .execute(&mut conn)
    .await
    .expect("the times are set");
    // The feeds carry the sort keys too (a draft's publication time is 0).
    sqlx::query(
        "UPDATE feed_entries SET created_at = ?, updated_at = ?, published_at = ? \
         WHERE article_id = ?",
    )
    .bind(created)
    .bind(updated)
    .bind(published.unwrap_or(0))
    .bind(id)
    .execute(&mut conn)
    .await
    .expect("the feeds' times are set");
    conn.close().await.ok();
}

/// Publishes `count` articles by `author`, oldest first, titled `<prefix> <n>`.
async fn publish_many(app: &TestApp, author: &TestUser, prefix: &str, count: usize) -> Vec<i64> {
    let mut created = Vec::with_capacity(count);
    for n in 1..=count {
        let article = app
            .article(
                author,
                json!({"title": format!("{prefix} {n}"), "body": "Text.", "status": "published"}),
            )
            .await;
        created.push(id_of(&article));
    }
    created
}

/// Closes the pool, and with it any transaction a failed write left waiting
/// for its rollback to be flushed (sqlx flushes it from a spawned task).
/// Without this the harness's `DROP DATABASE` on MariaDB can wait forever on
/// that transaction's metadata lock, since the drop blocks the runtime.
async fn close_pool(app: &TestApp) {
    app.state.store.close().await;
}

// ---------------------------------------------------------------- create

async fn creating_an_article_answers_201_with_location_and_every_field(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let response = app
        .post(
            ARTICLES,
            json!({"title": "Hello, World", "body": "First post.", "summary": "Hi.", "tags": ["Rust"]}),
            Some(&ada.token),
        )
        .await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let article = response.json();
    assert_eq!(response.header("location"), path_of(&article));
    assert_eq!(response.header("cache-control"), "no-store");
    assert!(article["id"].as_i64().is_some_and(|id| id > 0), "{article}");
    assert_eq!(article["slug"], "hello-world");
    assert_eq!(article["title"], "Hello, World");
    assert_eq!(article["summary"], "Hi.");
    assert_eq!(article["body"], "First post.");
    assert_eq!(article["status"], "draft");
    assert_eq!(article["tags"], json!(["rust"]));
    assert_eq!(article["author"], json!({"id": ada.id, "username": "ada"}));
    assert_iso8601_utc(&article["created_at"]);
    assert_iso8601_utc(&article["updated_at"]);
    assert_eq!(article["published_at"], Value::Null);
    assert_eq!(article["version"], 1);
}

async fn creating_a_published_article_sets_published_at(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Out now", "body": "Text.", "status": "published"}),
        )
        .await;

    assert_eq!(article["status"], "published");
    assert_iso8601_utc(&article["published_at"]);
}

async fn tags_are_lowercased_deduplicated_and_sorted(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Tagged", "body": "Text.", "tags": [" Zig ", "RUST", "rust", "C++", "axum"]}),
        )
        .await;

    assert_eq!(article["tags"], json!(["axum", "c++", "rust", "zig"]));
    let read = app.get(&path_of(&article), Some(&ada.token)).await;
    assert_eq!(read.json()["tags"], json!(["axum", "c++", "rust", "zig"]));
}

async fn tags_that_differ_only_by_accents_stay_distinct(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let plain = app
        .article(
            &ada,
            json!({"title": "Plain", "body": "Text.", "tags": ["cafe", "strasse"]}),
        )
        .await;
    assert_eq!(plain["tags"], json!(["cafe", "strasse"]));

    let accented = app
        .article(
            &ada,
            json!({"title": "Accented", "body": "Text.", "tags": ["café", "straße"]}),
        )
        .await;

    assert_eq!(accented["tags"], json!(["café", "straße"]));
}

async fn a_missing_summary_is_derived_from_the_body(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let short = app
        .article(
            &ada,
            json!({"title": "Short", "body": "One\n\ntwo   three."}),
        )
        .await;
    assert_eq!(short["summary"], "One two three.");

    let long_body = "word ".repeat(100);
    let long = app
        .article(&ada, json!({"title": "Long", "body": long_body}))
        .await;
    let summary = long["summary"].as_str().unwrap();
    assert!(summary.ends_with('…'), "{summary}");
    assert!(summary.chars().count() <= 201, "{summary}");
    assert!(long_body.starts_with(summary.trim_end_matches('…')));
}

async fn two_articles_with_the_same_title_get_different_slugs(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let first = app
        .article(&ada, json!({"title": "Same Title", "body": "One."}))
        .await;
    let second = app
        .article(&ada, json!({"title": "Same Title", "body": "Two."}))
        .await;
    close_pool(app).await;

    assert_eq!(first["slug"], "same-title");
    let slug = second["slug"].as_str().unwrap();
    assert_ne!(slug, "same-title");
    assert!(slug.starts_with("same-title-"), "{slug}");
    assert_ne!(first["id"], second["id"]);
}

async fn an_explicit_slug_that_is_taken_is_a_conflict(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    app.article(
        &ada,
        json!({"title": "First", "body": "One.", "slug": "my-slug"}),
    )
    .await;

    let response = app
        .post(
            ARTICLES,
            json!({"title": "Second", "body": "Two.", "slug": "my-slug"}),
            Some(&ada.token),
        )
        .await;
    let list = app
        .get(&list_uri(&[("status", "draft")]), Some(&ada.token))
        .await;
    close_pool(app).await;

    response.problem(StatusCode::CONFLICT);
    assert_eq!(list.json()["pagination"]["total"], 1);
}

async fn readers_may_not_create_articles(app: &TestApp) {
    let rita = app.user("rita", Role::Reader).await;

    let response = app
        .post(
            ARTICLES,
            json!({"title": "Nope", "body": "Text."}),
            Some(&rita.token),
        )
        .await;

    response.problem(StatusCode::FORBIDDEN);
}

async fn creating_without_a_token_is_unauthorized(app: &TestApp) {
    let response = app
        .post(ARTICLES, json!({"title": "Nope", "body": "Text."}), None)
        .await;

    response.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(response.header("www-authenticate"), "Bearer");
    assert_eq!(response.header("cache-control"), "no-store");
}

async fn server_managed_fields_in_the_body_are_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    for (field, value) in [
        ("id", json!(99)),
        ("author", json!({"id": 1, "username": "admin"})),
        ("version", json!(7)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
    ] {
        let mut body = json!({"title": "Sneaky", "body": "Text."});
        body[field] = value;

        let response = app.post(ARTICLES, body, Some(&ada.token)).await;

        let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{field}: {problem}"
        );
    }
    let list = app
        .get(&list_uri(&[("status", "draft")]), Some(&ada.token))
        .await;
    assert_eq!(list.json()["pagination"]["total"], 0);
}

async fn an_unknown_status_is_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;

    let response = app
        .post(
            ARTICLES,
            json!({"title": "Odd", "body": "Text.", "status": "archived"}),
            Some(&ada.token),
        )
        .await;

    response.problem(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_blank_title_is_refused_with_a_field_error(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;

    let response = app
        .post(
            ARTICLES,
            json!({"title": "   ", "body": "Text."}),
            Some(&ada.token),
        )
        .await;

    let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let errors = problem["errors"].as_array().expect("field errors");
    assert!(errors.iter().any(|e| e["field"] == "title"), "{problem}");
    assert!(errors.iter().all(|e| e["field"] != "body"), "{problem}");
}

async fn more_than_ten_tags_are_refused(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let tags: Vec<String> = (1..=11).map(|n| format!("tag{n}")).collect();

    let response = app
        .post(
            ARTICLES,
            json!({"title": "Busy", "body": "Text.", "tags": tags}),
            Some(&ada.token),
        )
        .await;

    let problem = response.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "tags", "{problem}");

    let ten = &tags[..10];
    let ok = app
        .article(&ada, json!({"title": "Full", "body": "Text.", "tags": ten}))
        .await;
    assert_eq!(ok["tags"].as_array().unwrap().len(), 10);
}

// ---------------------------------------------------------------- read

async fn reading_an_article_returns_its_body_and_an_etag(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let created = app
        .article(
            &ada,
            json!({"title": "Readable", "body": "The body.", "status": "published"}),
        )
        .await;

    let response = app.get(&path_of(&created), None).await;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), "application/json");
    let etag = response.header("etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(!response.header("last-modified").is_empty());
    assert_eq!(response.json(), created);
}

async fn if_none_match_with_the_etag_answers_an_empty_304(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let created = app
        .article(
            &ada,
            json!({"title": "Cached", "body": "Text.", "status": "published"}),
        )
        .await;
    let path = path_of(&created);
    let etag = app.get(&path, None).await.header("etag").to_owned();

    for tag in [etag.clone(), format!("W/{etag}")] {
        let response = send_with(
            app,
            Method::GET,
            &path,
            None,
            None,
            (header::IF_NONE_MATCH, &tag),
        )
        .await;
        assert_eq!(response.status, StatusCode::NOT_MODIFIED, "{tag}");
        assert!(response.body.is_empty(), "{tag}: {}", response.text());
        assert_eq!(response.header("etag"), etag);
    }

    let other = send_with(
        app,
        Method::GET,
        &path,
        None,
        None,
        (header::IF_NONE_MATCH, "\"something-else\""),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.json()["id"], created["id"]);
}

async fn an_unknown_or_malformed_id_is_a_404_problem(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    for uri in [
        "/api/v1/articles/999999",
        "/api/v1/articles/abc",
        "/api/v1/articles/1.5",
    ] {
        let response = app.get(uri, None).await;
        let problem = response.problem(StatusCode::NOT_FOUND);
        assert_eq!(problem["code"], "not_found", "{uri}: {problem}");
        let as_author = app.get(uri, Some(&ada.token)).await;
        as_author.problem(StatusCode::NOT_FOUND);
    }
}

async fn a_draft_is_visible_to_its_author_editors_and_admins_privately(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let ed = app.user("ed", Role::Editor).await;
    let root = app.user("root", Role::Admin).await;
    let draft = app
        .article(&ada, json!({"title": "Secret", "body": "Not yet."}))
        .await;

    for user in [&ada, &ed, &root] {
        let response = app.get(&path_of(&draft), Some(&user.token)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", user.username);
        assert_eq!(response.json()["body"], "Not yet.");
        assert_eq!(response.header("cache-control"), "private, no-store");
    }
}

async fn a_draft_is_hidden_from_anonymous_readers_and_other_authors(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let rita = app.user("rita", Role::Reader).await;
    let draft = app
        .article(&ada, json!({"title": "Secret", "body": "Not yet."}))
        .await;
    let path = path_of(&draft);

    let anonymous = app.get(&path, None).await;
    let anonymous_problem = anonymous.problem(StatusCode::NOT_FOUND);
    for user in [&bob, &rita] {
        let response = app.get(&path, Some(&user.token)).await;
        let problem = response.problem(StatusCode::NOT_FOUND);
        assert!(!response.text().contains("Not yet."));
        assert_eq!(problem, anonymous_problem, "same answer as a missing id");
    }
    let missing = app.get("/api/v1/articles/999999", None).await;
    assert_eq!(missing.json(), anonymous_problem);
}

async fn a_published_article_is_publicly_cacheable(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Public", "body": "Text.", "status": "published"}),
        )
        .await;

    let response = app.get(&path_of(&article), None).await;

    let cache_control = response.header("cache-control");
    assert!(cache_control.starts_with("public"), "{cache_control}");
    assert!(cache_control.contains("s-maxage="), "{cache_control}");
}

// ---------------------------------------------------------------- list

async fn lists_leave_out_bodies(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    app.article(
        &ada,
        json!({"title": "Listed", "body": "Long body.", "summary": "Short.", "status": "published", "tags": ["x"]}),
    )
    .await;

    let response = app.get(ARTICLES, None).await;

    assert_eq!(response.status, StatusCode::OK);
    let list = response.json();
    let item = &list["items"][0];
    assert!(item.get("body").is_none(), "{item}");
    assert_eq!(item["summary"], "Short.");
    assert_eq!(item["title"], "Listed");
    assert_eq!(item["tags"], json!(["x"]));
    assert_eq!(item["author"]["username"], "ada");
    assert!(!response.text().contains("Long body."));
}

async fn the_default_list_shows_published_articles_newest_first(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let published = publish_many(app, &ada, "Post", 3).await;
    app.article(&ada, json!({"title": "Draft", "body": "Text."}))
        .await;

    for token in [None, Some(ada.token.as_str())] {
        let response = app.get(ARTICLES, token).await;
        assert_eq!(response.status, StatusCode::OK);
        let list = response.json();
        let newest_first: Vec<i64> = published.iter().rev().copied().collect();
        assert_eq!(ids(&list), newest_first);
        assert_eq!(list["pagination"]["total"], 3);
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|item| item["status"] == "published")
        );
        let cache_control = response.header("cache-control");
        assert!(cache_control.starts_with("public"), "{cache_control}");
        assert!(!response.header("etag").is_empty());
    }
}

async fn a_list_answers_an_empty_304_to_its_etag(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    publish_many(app, &ada, "Post", 2).await;
    let first = app.get(ARTICLES, None).await;
    let etag = first.header("etag").to_owned();

    let again = send_with(
        app,
        Method::GET,
        ARTICLES,
        None,
        None,
        (header::IF_NONE_MATCH, &etag),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty(), "{}", again.text());

    publish_many(app, &ada, "Newer", 1).await;
    let changed = send_with(
        app,
        Method::GET,
        ARTICLES,
        None,
        None,
        (header::IF_NONE_MATCH, &etag),
    )
    .await;
    assert_eq!(
        changed.status,
        StatusCode::OK,
        "a new article changes the list"
    );
    assert_ne!(changed.header("etag"), etag);
    assert_eq!(changed.json()["pagination"]["total"], 3);
}

async fn pagination_metadata_and_links_follow_the_pages(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let mut newest_first = publish_many(app, &ada, "Post", 5).await;
    newest_first.reverse();
    let link = |page: u32| format!("{ARTICLES}?page={page}&per_page=2");

    let mut seen = Vec::new();
    for page in 1..=3u32 {
        let response = app
            .get(&format!("{ARTICLES}?page={page}&per_page=2"), None)
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let list = response.json();
        assert_eq!(
            list["pagination"],
            json!({"page": page, "per_page": 2, "total": 5, "pages": 3})
        );
        assert_eq!(list["links"]["self"], link(page));
        let last_seen = ids(&list).last().copied().unwrap();
        let next = if page < 3 {
            json!(format!("{ARTICLES}?after={last_seen}&per_page=2"))
        } else {
            Value::Null
        };
        let prev = if page > 1 {
            json!(link(page - 1))
        } else {
            Value::Null
        };
        assert_eq!(list["links"]["next"], next, "page {page}");
        assert_eq!(list["links"]["prev"], prev, "page {page}");
        seen.extend(ids(&list));
    }
    assert_eq!(seen, newest_first, "pages neither overlap nor skip");

    let via_link = app.get(&link(2), None).await.json();
    assert_eq!(ids(&via_link), newest_first[2..4]);

    // Following `next` from the first page walks the same list by cursor.
    let mut walked = Vec::new();
    let mut next = Some(link(1));
    while let Some(uri) = next {
        let list = app.get(&uri, None).await.json();
        walked.extend(ids(&list));
        next = list["links"]["next"].as_str().map(str::to_owned);
    }
    assert_eq!(
        walked, newest_first,
        "cursor pages neither overlap nor skip"
    );
    let cursor_page = app
        .get(
            &format!("{ARTICLES}?after={}&per_page=2", newest_first[1]),
            None,
        )
        .await
        .json();
    assert_eq!(cursor_page["pagination"]["page"], Value::Null);
    assert_eq!(
        cursor_page["pagination"]["total"],
        Value::Null,
        "a cursor page has no total"
    );
    assert_eq!(cursor_page["pagination"]["pages"], Value::Null);
    assert_eq!(cursor_page["links"]["prev"], Value::Null);
}

async fn page_zero_and_a_non_numeric_page_are_bad_requests(app: &TestApp) {
    let zero = app.get(&format!("{ARTICLES}?page=0"), None).await;
    let problem = zero.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "page", "{problem}");
    assert_eq!(zero.header("cache-control"), "no-store");

    for query in ["page=abc", "page=-1", "per_page=many"] {
        let response = app.get(&format!("{ARTICLES}?{query}"), None).await;
        response.problem(StatusCode::BAD_REQUEST);
    }
}

async fn per_page_over_the_cap_is_clamped_to_100(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    publish_many(app, &ada, "Post", 2).await;

    let response = app.get(&format!("{ARTICLES}?per_page=1000"), None).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let list = response.json();
    assert_eq!(list["pagination"]["per_page"], 100);
    assert_eq!(list["pagination"]["total"], 2);
    assert_eq!(
        list["links"]["self"],
        format!("{ARTICLES}?page=1&per_page=100")
    );
    assert_eq!(ids(&list).len(), 2);
}

async fn a_page_past_the_end_is_empty(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    publish_many(app, &ada, "Post", 2).await;

    for page in ["3", "100"] {
        let response = app.get(&format!("{ARTICLES}?page={page}"), None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{page}: {}",
            response.text()
        );
        let list = response.json();
        assert_eq!(list["items"], json!([]), "{page}");
        assert_eq!(list["pagination"]["total"], 2, "{page}");
        assert_eq!(list["links"]["next"], Value::Null, "{page}");
    }
}

async fn page_numbers_past_the_offset_cap_point_to_after(app: &TestApp) {
    for query in [
        "page=101",
        "page=1000000",
        "page=4294967295",
        "page=102&per_page=100",
    ] {
        let response = app.get(&format!("{ARTICLES}?{query}"), None).await;
        let problem = response.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], "page", "{query}: {problem}");
        assert_eq!(problem["errors"][0]["code"], "too_deep", "{query}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("after="), "{message}");
    }
}

async fn a_cursor_wins_over_a_page_number(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let newest_first: Vec<i64> = publish_many(app, &ada, "Post", 3)
        .await
        .into_iter()
        .rev()
        .collect();
    let both = app
        .get(
            &format!("{ARTICLES}?page=2&per_page=1&after={}", newest_first[0]),
            None,
        )
        .await
        .json();
    assert_eq!(ids(&both), [newest_first[1]]);
    assert_eq!(both["pagination"]["page"], Value::Null);
}

async fn cursor_pages_follow_the_named_article_in_every_sort_and_filter(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let mut all = Vec::new();
    for (n, author) in [&ada, &bob, &ada, &ada, &bob, &ada].into_iter().enumerate() {
        let tags = if n % 2 == 0 {
            json!(["rust"])
        } else {
            json!(["web"])
        };
        let title = format!("Story {} words", ["f", "b", "e", "a", "d", "c"][n]);
        let body = json!({"title": title, "body": "Text.", "status": "published", "tags": tags});
        all.push(id_of(&app.article(author, body).await));
    }
    for filter in [
        "",
        "author=ada&",
        "tag=rust&",
        "q=story+words&",
        "author=ada&tag=rust&",
    ] {
        for sort in ArticleSort::ALLOWED.split(", ") {
            let base = format!("{ARTICLES}?{filter}sort={}&per_page=100", urlencode(sort));
            let whole = ids(&app.get(&base, None).await.json());
            assert!(!whole.is_empty(), "{base}");
            for (i, after) in whole.iter().enumerate() {
                let uri = format!("{ARTICLES}?{filter}sort={}&after={after}", urlencode(sort));
                let response = app.get(&uri, None).await;
                assert_eq!(
                    response.status,
                    StatusCode::OK,
                    "{uri}: {}",
                    response.text()
                );
                assert_eq!(ids(&response.json()), whole[i + 1..], "{uri}");
            }
        }
    }
}

async fn an_unknown_or_invisible_cursor_is_not_found_naming_after(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let draft = app
        .article(&ada, json!({"title": "Secret", "body": "Text."}))
        .await;
    publish_many(app, &ada, "Post", 2).await;
    for uri in [
        format!("{ARTICLES}?after=999999"),
        format!("{ARTICLES}?after={}", id_of(&draft)),
        format!("{ARTICLES}?tag=nothing-here&after=999999"),
    ] {
        let response = app.get(&uri, None).await;
        let problem = response.problem(StatusCode::NOT_FOUND);
        assert_eq!(problem["code"], "unknown_cursor", "{uri}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "after", "{uri}: {problem}");
    }
    let own = app
        .get(
            &format!("{ARTICLES}?status=draft&after={}", id_of(&draft)),
            Some(&ada.token),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
}

fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).unwrap()[2..].to_owned()
}

async fn an_unknown_sort_is_a_bad_request_naming_sort(app: &TestApp) {
    for sort in ["password", "title; DROP TABLE articles", "-body", "id"] {
        let response = app.get(&list_uri(&[("sort", sort)]), None).await;
        let problem = response.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], "sort", "{sort}: {problem}");
    }
    let still_there = app.get(ARTICLES, None).await;
    assert_eq!(still_there.status, StatusCode::OK);
}

async fn every_whitelisted_sort_orders_the_list(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let mut made = Vec::new();
    for title in ["Bravo", "Charlie", "Alpha"] {
        let article = app
            .article(
                &ada,
                json!({"title": title, "body": "Text.", "status": "published"}),
            )
            .await;
        made.push(id_of(&article));
    }
    let (bravo, charlie, alpha) = (made[0], made[1], made[2]);
    let hour = 3_600_000;
    let base = 1_700_000_000_000;
    // created: bravo < charlie < alpha; updated: charlie < alpha < bravo;
    // published: alpha < bravo < charlie.
    set_times(app, bravo, base, base + 9 * hour, Some(base + 2 * hour)).await;
    set_times(
        app,
        charlie,
        base + hour,
        base + 4 * hour,
        Some(base + 3 * hour),
    )
    .await;
    set_times(
        app,
        alpha,
        base + 2 * hour,
        base + 5 * hour,
        Some(base + hour),
    )
    .await;

    let expected = [
        ("-created_at", [alpha, charlie, bravo]),
        ("created_at", [bravo, charlie, alpha]),
        ("-updated_at", [bravo, alpha, charlie]),
        ("updated_at", [charlie, alpha, bravo]),
        ("-published_at", [charlie, bravo, alpha]),
        ("published_at", [alpha, bravo, charlie]),
        ("title", [alpha, bravo, charlie]),
        ("-title", [charlie, bravo, alpha]),
    ];
    for (sort, order) in expected {
        let response = app.get(&list_uri(&[("sort", sort)]), None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{sort}: {}",
            response.text()
        );
        let list = response.json();
        assert_eq!(ids(&list), order, "sort={sort}");
        let self_link = list["links"]["self"].as_str().unwrap();
        if sort != "-created_at" {
            let encoded = serde_urlencoded::to_string([("sort", sort)]).unwrap();
            assert!(self_link.contains(&encoded), "{sort}: {self_link}");
        }
    }
    let titles: Vec<Value> = app.get(&list_uri(&[("sort", "title")]), None).await.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].clone())
        .collect();
    assert_eq!(titles, [json!("Alpha"), json!("Bravo"), json!("Charlie")]);
}

async fn the_author_filter_lists_only_that_authors_articles(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let by_ada = publish_many(app, &ada, "Ada", 2).await;
    publish_many(app, &bob, "Bob", 2).await;

    let response = app.get(&list_uri(&[("author", "ada")]), None).await;

    assert_eq!(response.status, StatusCode::OK);
    let list = response.json();
    assert_eq!(ids(&list), [by_ada[1], by_ada[0]]);
    assert_eq!(list["pagination"]["total"], 2);
    assert_eq!(
        list["links"]["self"],
        format!("{ARTICLES}?author=ada&page=1&per_page=20")
    );

    let nobody = app.get(&list_uri(&[("author", "nobody")]), None).await;
    assert_eq!(nobody.status, StatusCode::OK);
    assert_eq!(nobody.json()["items"], json!([]));
}

async fn the_tag_filter_matches_normalised_tags(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let rusty = app
        .article(
            &ada,
            json!({"title": "Rusty", "body": "Text.", "status": "published", "tags": ["Rust", "web"]}),
        )
        .await;
    app.article(
        &ada,
        json!({"title": "Webby", "body": "Text.", "status": "published", "tags": ["web"]}),
    )
    .await;
    app.article(
        &ada,
        json!({"title": "Draft rust", "body": "Text.", "tags": ["rust"]}),
    )
    .await;

    for tag in ["rust", "RUST", " Rust "] {
        let response = app.get(&list_uri(&[("tag", tag)]), None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{tag}: {}",
            response.text()
        );
        let list = response.json();
        assert_eq!(ids(&list), [id_of(&rusty)], "{tag}");
    }
    let web = app.get(&list_uri(&[("tag", "web")]), None).await.json();
    assert_eq!(web["pagination"]["total"], 2);
    let none = app.get(&list_uri(&[("tag", "go")]), None).await.json();
    assert_eq!(none["items"], json!([]));
}

async fn q_matches_titles_case_insensitively(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let rust = app
        .article(
            &ada,
            json!({"title": "Learning Rust Ownership", "body": "Text.", "status": "published"}),
        )
        .await;
    app.article(
        &ada,
        json!({"title": "Go channels", "body": "About rust too.", "status": "published"}),
    )
    .await;

    for q in [
        "rust",
        "RUST",
        "rUsT oWnErShIp",
        "  rust  ",
        "ownership learning",
    ] {
        let response = app.get(&list_uri(&[("q", q)]), None).await;
        assert_eq!(response.status, StatusCode::OK, "{q}");
        assert_eq!(ids(&response.json()), [id_of(&rust)], "q={q:?}");
    }
}

async fn q_matches_titles_that_have_every_word(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let mut by_title = std::collections::HashMap::new();
    for title in [
        "Rust ownership explained",
        "Trust issues",
        "Rusty tools",
        "snake_case naming",
        "Go is a language",
    ] {
        let article = app
            .article(
                &ada,
                json!({"title": title, "body": "Text.", "status": "published"}),
            )
            .await;
        by_title.insert(title, id_of(&article));
    }
    let found = |q: &'static str| async move {
        let response = app.get(&list_uri(&[("q", q)]), None).await;
        assert_eq!(response.status, StatusCode::OK, "{q}: {}", response.text());
        ids(&response.json())
    };
    assert_eq!(
        found("rust").await,
        [by_title["Rust ownership explained"]],
        "whole words only"
    );
    assert_eq!(
        found("explained rust").await,
        [by_title["Rust ownership explained"]],
        "every word, in any order"
    );
    assert_eq!(found("rust issues").await, Vec::<i64>::new());
    assert_eq!(found("snake_case").await, [by_title["snake_case naming"]]);
    assert_eq!(found("snake").await, Vec::<i64>::new());
    assert_eq!(
        found("go").await,
        [by_title["Go is a language"]],
        "short words count"
    );
    assert_eq!(found("A").await, [by_title["Go is a language"]]);
    // Punctuation separates words.
    assert_eq!(found("rust?! (explained)").await.len(), 1);
    // Punctuation alone has no word: it matches nothing.
    for q in ["%", "'", "--", "!?", "\u{200e}"] {
        assert_eq!(found(q).await, Vec::<i64>::new(), "{q:?}");
    }
}

async fn q_is_case_insensitive_beyond_ascii(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let emile = app
        .article(
            &ada,
            json!({"title": "Émile à Paris", "body": "Text.", "status": "published"}),
        )
        .await;

    for q in ["Émile", "émile", "ÉMILE", "À PARIS", "emile", "EMILE PARIS"] {
        let response = app.get(&list_uri(&[("q", q)]), None).await;
        assert_eq!(response.status, StatusCode::OK, "{q}");
        assert_eq!(ids(&response.json()), [id_of(&emile)], "q={q:?}");
    }
}

async fn anonymous_callers_and_readers_list_no_drafts(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let rita = app.user("rita", Role::Reader).await;
    app.article(&ada, json!({"title": "Secret", "body": "Text."}))
        .await;

    for token in [None, Some(rita.token.as_str())] {
        let response = app.get(&list_uri(&[("status", "draft")]), token).await;
        assert_eq!(response.status, StatusCode::OK);
        let list = response.json();
        assert_eq!(list["items"], json!([]));
        assert_eq!(list["pagination"]["total"], 0);
        assert!(!response.text().contains("Secret"));
    }
}

async fn authors_list_only_their_own_drafts(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let mine = app
        .article(&ada, json!({"title": "Ada draft", "body": "Text."}))
        .await;
    app.article(&bob, json!({"title": "Bob draft", "body": "Text."}))
        .await;
    publish_many(app, &ada, "Ada published", 1).await;

    let response = app
        .get(&list_uri(&[("status", "draft")]), Some(&ada.token))
        .await;

    assert_eq!(response.status, StatusCode::OK);
    let list = response.json();
    assert_eq!(ids(&list), [id_of(&mine)]);
    assert_eq!(list["pagination"]["total"], 1);
    assert_eq!(response.header("cache-control"), "private, no-store");
    assert_eq!(
        list["links"]["self"],
        format!("{ARTICLES}?status=draft&page=1&per_page=20")
    );

    let bobs_by_name = app
        .get(
            &list_uri(&[("status", "draft"), ("author", "bob")]),
            Some(&ada.token),
        )
        .await
        .json();
    assert_eq!(bobs_by_name["items"], json!([]));
}

async fn editors_and_admins_list_every_draft_privately(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let bob = app.user("bob", Role::Author).await;
    let ed = app.user("ed", Role::Editor).await;
    let root = app.user("root", Role::Admin).await;
    let adas = app
        .article(&ada, json!({"title": "Ada draft", "body": "Text."}))
        .await;
    let bobs = app
        .article(&bob, json!({"title": "Bob draft", "body": "Text."}))
        .await;
    publish_many(app, &ada, "Published", 1).await;

    for user in [&ed, &root] {
        let response = app
            .get(&list_uri(&[("status", "draft")]), Some(&user.token))
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let list = response.json();
        assert_eq!(
            ids(&list),
            [id_of(&bobs), id_of(&adas)],
            "{}",
            user.username
        );
        assert_eq!(response.header("cache-control"), "private, no-store");
    }
}

async fn sql_metacharacters_in_filters_are_harmless(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    publish_many(app, &ada, "Visible", 2).await;
    app.article(&ada, json!({"title": "Hidden draft", "body": "Text."}))
        .await;
    let attacks = [
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "x'); DROP TABLE articles; --",
        "%' OR '1'='1",
        "\\",
    ];

    for attack in attacks {
        for field in ["q", "author"] {
            let response = app.get(&list_uri(&[(field, attack)]), None).await;
            assert_eq!(response.status, StatusCode::OK, "{field}={attack:?}");
            let list = response.json();
            assert_eq!(list["items"], json!([]), "{field}={attack:?}");
            assert_eq!(list["pagination"]["total"], 0, "{field}={attack:?}");
        }
        // Tags are validated, so these are refused before any query runs.
        let tag = app.get(&list_uri(&[("tag", attack)]), None).await;
        let problem = tag.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], "tag", "{attack:?}");
    }
    // A valid tag made of SQL comment characters still matches nothing.
    let comment_tag = app.get(&list_uri(&[("tag", "--#")]), None).await;
    assert_eq!(comment_tag.status, StatusCode::OK);
    assert_eq!(comment_tag.json()["items"], json!([]));

    let all = app.get(ARTICLES, None).await.json();
    assert_eq!(all["pagination"]["total"], 2, "the table is intact");
}

// ---------------------------------------------------------------- update

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

// ---------------------------------------------------------------- delete

async fn deleting_an_article_answers_204_and_it_is_gone(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Doomed", "body": "Text.", "status": "published"}),
        )
        .await;
    let path = path_of(&article);

    let response = app.delete(&path, Some(&ada.token)).await;

    assert_eq!(
        response.status,
        StatusCode::NO_CONTENT,
        "{}",
        response.text()
    );
    assert!(response.body.is_empty(), "{}", response.text());
    app.get(&path, None).await.problem(StatusCode::NOT_FOUND);
    app.get(&path, Some(&ada.token))
        .await
        .problem(StatusCode::NOT_FOUND);
    assert_eq!(app.get(ARTICLES, None).await.json()["items"], json!([]));
    app.delete(&path, Some(&ada.token))
        .await
        .problem(StatusCode::NOT_FOUND);
}

async fn another_author_may_not_delete_an_article(app: &TestApp) {
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
        app.delete(&path, Some(&user.token))
            .await
            .problem(StatusCode::FORBIDDEN);
    }
    app.delete(&path, None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&path, None).await.status, StatusCode::OK);
}

async fn editors_and_admins_may_delete_anyones_article(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let ed = app.user("ed", Role::Editor).await;
    let root = app.user("root", Role::Admin).await;
    let first = app
        .article(&ada, json!({"title": "First", "body": "Text."}))
        .await;
    let second = app
        .article(
            &ada,
            json!({"title": "Second", "body": "Text.", "status": "published"}),
        )
        .await;

    for (user, article) in [(&root, &first), (&ed, &second)] {
        let response = app.delete(&path_of(article), Some(&user.token)).await;
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", user.username);
        app.get(&path_of(article), Some(&ada.token))
            .await
            .problem(StatusCode::NOT_FOUND);
    }
}

async fn a_stale_if_match_on_delete_is_a_precondition_failure(app: &TestApp) {
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
    let edited = app
        .patch(&path, json!({"title": "Edited"}), Some(&ada.token))
        .await;
    let new_etag = edited.header("etag").to_owned();

    for stale in [old_etag.as_str(), "\"1\""] {
        let response = send_with(
            app,
            Method::DELETE,
            &path,
            None,
            Some(&ada),
            (header::IF_MATCH, stale),
        )
        .await;
        response.problem(StatusCode::PRECONDITION_FAILED);
    }
    assert_eq!(
        app.get(&path, Some(&ada.token)).await.status,
        StatusCode::OK
    );

    let current = send_with(
        app,
        Method::DELETE,
        &path,
        None,
        Some(&ada),
        (header::IF_MATCH, &new_etag),
    )
    .await;
    assert_eq!(current.status, StatusCode::NO_CONTENT, "{}", current.text());
}

async fn deleting_an_article_deletes_its_comments(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let rita = app.user("rita", Role::Reader).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Discussed", "body": "Text.", "status": "published"}),
        )
        .await;
    let path = path_of(&article);
    let comment = app
        .post(
            &format!("{path}/comments"),
            json!({"body": "Nice."}),
            Some(&rita.token),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.text());
    let comment_path = comment.header("location").to_owned();
    assert_eq!(app.get(&comment_path, None).await.status, StatusCode::OK);

    let response = app.delete(&path, Some(&ada.token)).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);

    app.get(&format!("{path}/comments"), None)
        .await
        .problem(StatusCode::NOT_FOUND);
    app.get(&comment_path, None)
        .await
        .problem(StatusCode::NOT_FOUND);
    let mut conn = AnyConnection::connect(app.db.url()).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE article_id = ?")
        .bind(id_of(&article))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    assert_eq!(left, 0, "no orphaned comment rows");
}

on_both_backends!(
    creating_an_article_answers_201_with_location_and_every_field,
    creating_a_published_article_sets_published_at,
    tags_are_lowercased_deduplicated_and_sorted,
    tags_that_differ_only_by_accents_stay_distinct,
    a_missing_summary_is_derived_from_the_body,
    two_articles_with_the_same_title_get_different_slugs,
    an_explicit_slug_that_is_taken_is_a_conflict,
    readers_may_not_create_articles,
    creating_without_a_token_is_unauthorized,
    server_managed_fields_in_the_body_are_refused,
    an_unknown_status_is_refused,
    a_blank_title_is_refused_with_a_field_error,
    more_than_ten_tags_are_refused,
    reading_an_article_returns_its_body_and_an_etag,
    if_none_match_with_the_etag_answers_an_empty_304,
    an_unknown_or_malformed_id_is_a_404_problem,
    a_draft_is_visible_to_its_author_editors_and_admins_privately,
    a_draft_is_hidden_from_anonymous_readers_and_other_authors,
    a_published_article_is_publicly_cacheable,
    lists_leave_out_bodies,
    the_default_list_shows_published_articles_newest_first,
    a_list_answers_an_empty_304_to_its_etag,
    pagination_metadata_and_links_follow_the_pages,
    page_numbers_past_the_offset_cap_point_to_after,
    a_cursor_wins_over_a_page_number,
    cursor_pages_follow_the_named_article_in_every_sort_and_filter,
    an_unknown_or_invisible_cursor_is_not_found_naming_after,
    page_zero_and_a_non_numeric_page_are_bad_requests,
    per_page_over_the_cap_is_clamped_to_100,
    a_page_past_the_end_is_empty,
    an_unknown_sort_is_a_bad_request_naming_sort,
    every_whitelisted_sort_orders_the_list,
    the_author_filter_lists_only_that_authors_articles,
    the_tag_filter_matches_normalised_tags,
    q_matches_titles_case_insensitively,
    q_matches_titles_that_have_every_word,
    q_is_case_insensitive_beyond_ascii,
    anonymous_callers_and_readers_list_no_drafts,
    authors_list_only_their_own_drafts,
    editors_and_admins_list_every_draft_privately,
    sql_metacharacters_in_filters_are_harmless,
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
    deleting_an_article_answers_204_and_it_is_gone,
    another_author_may_not_delete_an_article,
    editors_and_admins_may_delete_anyones_article,
    a_stale_if_match_on_delete_is_a_precondition_failure,
    deleting_an_article_deletes_its_comments,
);
