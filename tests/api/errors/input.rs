//! Hostile input in bodies, paths, queries and preconditions (SQL
//! metacharacters, odd unicode, overflowing numbers, junk): stored
//! literally or refused with a 4xx, never a 500.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use feedgate::domain::Role;
use serde_json::{Value, json};

use super::{article_uri, assert_problem};
use crate::on_both_backends;
use crate::support::TestApp;

async fn unicode_round_trips_exactly(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let title = "Emoji 🦀🎉👩‍👩‍👧 日本語の記事 مرحبا \u{200f}בעולם\u{202e}txt e\u{301}\u{308}";
    let body = "Ünïcödé body: 中文, 한국어, ไทย, z\u{0335}\u{0321}a\u{0337}l\u{0358}g\u{0322}o, \
                𝔘𝔫𝔦𝔠𝔬𝔡𝔢, \u{feff}BOM, \u{1F3F3}\u{FE0F}\u{200D}\u{1F308}.";
    let comment = "👍 同意 — أوافق e\u{301}";
    let created = app
        .article(
            &ada,
            json!({"title": title, "body": body, "status": "published", "tags": ["日本語"]}),
        )
        .await;
    assert_eq!(created["title"], title);
    assert_eq!(created["body"], body);
    assert_eq!(created["summary"], body, "a short body is its own summary");

    let read = app.get(&article_uri(&created), None).await;
    assert_eq!(read.status, StatusCode::OK);
    let read = read.json();
    assert_eq!(read["title"], title);
    assert_eq!(read["body"], body);
    assert_eq!(read["tags"], json!(["日本語"]));

    let uri = format!("{}/comments", article_uri(&created));
    let posted = app
        .post(&uri, json!({"body": comment}), Some(&ada.token))
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text());
    let listed = app.get(&uri, None).await.json();
    assert_eq!(listed["items"][0]["body"], comment);

    let found = app
        .get(
            "/api/v1/articles?q=%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AE%E8%A8%98%E4%BA%8B",
            None,
        )
        .await
        .json();
    assert_eq!(found["pagination"]["total"], 1, "{found}");
    assert_eq!(found["items"][0]["title"], title);
    let tagged = app
        .get("/api/v1/articles?tag=%E6%97%A5%E6%9C%AC%E8%AA%9E", None)
        .await
        .json();
    assert_eq!(tagged["pagination"]["total"], 1, "{tagged}");
}

const HOSTILE: [&str; 6] = [
    "'; DROP TABLE articles; --",
    "\" OR \"\"=\"",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "back\\slash \\' \\\" \\\\ end\\",
    "nul \u{0} inside",
    "100% _wild_ [card] !escape",
];

async fn sql_metacharacters_are_stored_and_returned_literally(app: &TestApp) {
    let ada = app.user("o'hara\\\"--", Role::Author).await;
    let mut ids = Vec::new();
    for text in HOSTILE {
        let created = app
            .article(
                &ada,
                json!({"title": text, "body": text, "summary": text, "status": "published"}),
            )
            .await;
        let read = app.get(&article_uri(&created), None).await.json();
        assert_eq!(read["title"], text);
        assert_eq!(read["body"], text);
        assert_eq!(read["summary"], text);
        assert_eq!(read["author"]["username"], ada.username);

        let uri = format!("{}/comments", article_uri(&created));
        let posted = app
            .post(&uri, json!({"body": text}), Some(&ada.token))
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text());
        let comment = app.get(posted.header("location"), None).await.json();
        assert_eq!(comment["body"], text);
        ids.push(created["id"].clone());
    }

    let everything = app.get("/api/v1/articles", None).await.json();
    assert_eq!(everything["pagination"]["total"], HOSTILE.len());

    let by_author = app
        .get("/api/v1/articles?author=o%27hara%5C%22--", None)
        .await
        .json();
    assert_eq!(
        by_author["pagination"]["total"],
        HOSTILE.len(),
        "{by_author}"
    );
    for injected in [
        "%27%20OR%20%271%27%3D%271",
        "x%27--",
        "%22%20OR%20%22%22%3D%22",
    ] {
        let listed = app
            .get(&format!("/api/v1/articles?author={injected}"), None)
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
        assert_eq!(listed.json()["pagination"]["total"], 0, "author={injected}");
    }

    // Searches match the words around the metacharacters, which are
    // separators: no search syntax or SQL gets through.
    let searches = [
        ("%27%3B%20DROP%20TABLE", 0),
        ("%22%20OR%20%22%22%3D%22", 1),
        ("DELETE%20FROM%20users", 2),
        ("%5Cback%20%5Cslash%22", 3),
        ("inside%00", 4),
        ("100%25%20_wild_%20%5Bcard%5D%20!escape", 5),
        ("%2B_wild_%20-card%20%22escape%22%20*", 5),
    ];
    for (q, index) in searches {
        let found = app
            .get(&format!("/api/v1/articles?q={q}"), None)
            .await
            .json();
        assert_eq!(found["pagination"]["total"], 1, "q={q}: {found}");
        assert_eq!(found["items"][0]["id"], ids[index], "q={q}");
    }
    // Metacharacters alone are no word to search for.
    for q in ["%25", "%27", "%5C", "%22%3D%22"] {
        let response = app.get(&format!("/api/v1/articles?q={q}"), None).await;
        assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
    }
    let sorted = app.get("/api/v1/articles?sort=title%3B%20DROP", None).await;
    assert_problem(&sorted, StatusCode::BAD_REQUEST, "bad_request");
    let tagged = app
        .get("/api/v1/articles?tag=x%27%20OR%201%3D1", None)
        .await;
    assert_problem(&tagged, StatusCode::BAD_REQUEST, "bad_request");

    let refused = app
        .post(
            "/api/v1/users",
            json!({"username": "x'; DROP TABLE users; --", "password": "long enough pw"}),
            None,
        )
        .await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // Every table still works.
    let after = app
        .article(
            &ada,
            json!({"title": "Still here", "body": "Fine.", "status": "published"}),
        )
        .await;
    assert_eq!(
        app.get(&article_uri(&after), None).await.status,
        StatusCode::OK
    );
    let registered = app
        .post(
            "/api/v1/users",
            json!({"username": "newcomer", "password": "long enough pw"}),
            None,
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    let me = app.get("/api/v1/users/me", Some(&ada.token)).await.json();
    assert_eq!(me["username"], ada.username);
    let total = app.get("/api/v1/articles", None).await.json();
    assert_eq!(total["pagination"]["total"], HOSTILE.len() + 1);
    assert_eq!(app.get("/api/v1/tags", None).await.status, StatusCode::OK);
}

async fn huge_or_malformed_paging_numbers_are_400_not_500(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(
            &ada,
            json!({"title": "Paged", "body": "Text.", "status": "published"}),
        )
        .await;
    let comments = format!("{}/comments", article_uri(&article));
    let bad = [
        "page=99999999999999999999",
        "per_page=99999999999999999999",
        "page=4294967296",
        "page=-1",
        "per_page=-5",
        "page=1e3",
        "page=1.5",
        "page=abc",
        "page=",
        "page=1&page=2",
        "page=4294967295",
        "after=1&after=2",
    ];
    for path in ["/api/v1/articles", "/api/v1/tags", comments.as_str()] {
        for query in bad {
            let response = app.get(&format!("{path}?{query}"), None).await;
            assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        }
        let last = app.get(&format!("{path}?page=100"), None).await;
        assert_eq!(last.status, StatusCode::OK, "{path}: {}", last.text());
        assert_eq!(last.json()["items"], json!([]));
    }
    for path in ["/api/v1/articles", comments.as_str()] {
        for query in [
            "after=abc",
            "after=",
            "after=1.5",
            "after=99999999999999999999",
        ] {
            let response = app.get(&format!("{path}?{query}"), None).await;
            assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        }
    }
}

async fn out_of_range_or_malformed_path_ids_are_404(app: &TestApp) {
    let ada = app.user("ada", Role::Admin).await;
    for id in [
        "99999999999999999999",
        "9223372036854775808",
        "9223372036854775807",
        "-1",
        "-9223372036854775808",
        "0",
        "abc",
        "1.5",
        "%20",
    ] {
        for uri in [
            format!("/api/v1/articles/{id}"),
            format!("/api/v1/articles/{id}/comments"),
            format!("/api/v1/comments/{id}"),
            format!("/api/v1/users/{id}"),
        ] {
            let response = app.get(&uri, None).await;
            assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
        }
        let uri = format!("/api/v1/articles/{id}");
        let response = app.delete(&uri, Some(&ada.token)).await;
        assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
        let patch = json!({"title": "New"});
        let response = app.patch(&uri, patch, Some(&ada.token)).await;
        assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
        let response = app
            .post(
                &format!("{uri}/comments"),
                json!({"body": "Hi"}),
                Some(&ada.token),
            )
            .await;
        assert_problem(&response, StatusCode::NOT_FOUND, "not_found");
    }
}

async fn percent_encoded_junk_in_the_query_is_a_clean_answer(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    app.article(
        &ada,
        json!({"title": "Plain", "body": "Text.", "status": "published"}),
    )
    .await;
    // A search with no word at all is refused, never taken for the
    // unfiltered list.
    for query in ["q=%FF%FE", "q=%00", "q=%E2%80%AE", "q=%25%27%22"] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        let problem = assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(problem["errors"][0]["field"], "q", "{query}");
    }
    for query in [
        "q=abc%26def%3Dghi",
        "q=%E2%80%AEplain",
        "q=%zz%",
        "q=a%26b%3Dc",
        "q=%2525",
        "author=%FF",
        "unknown=%00%01&also=1",
        "%FF=%FF",
        "q",
        "&&&=&",
    ] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{query}: {}",
            response.text()
        );
        assert!(response.json()["items"].is_array(), "{query}");
    }
    let plain = app.get("/api/v1/articles?q=%50lain", None).await.json();
    assert_eq!(plain["pagination"]["total"], 1, "%50 decodes to P");
    let sorted = app.get("/api/v1/articles?sort=%2Dtitle", None).await;
    assert_eq!(sorted.status, StatusCode::OK, "{}", sorted.text());
    for query in [
        "tag=%F0%9F%92%A9",
        "tag=a%20b",
        "status=%00",
        "sort=%FF",
        "page=%31%00",
    ] {
        let response = app.get(&format!("/api/v1/articles?{query}"), None).await;
        assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
    }
}

async fn very_long_query_values_are_400(app: &TestApp) {
    let long = "a".repeat(10_000);
    for field in ["q", "author", "tag"] {
        let response = app
            .get(&format!("/api/v1/articles?{field}={long}"), None)
            .await;
        let problem = assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(problem.to_string().len() < 2_000, "the value is not echoed");
    }
    let multibyte = "%E6%97%A5".repeat(101);
    let response = app
        .get(&format!("/api/v1/articles?q={multibyte}"), None)
        .await;
    assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");
    let at_limit = "%E6%97%A5".repeat(100);
    let response = app
        .get(&format!("/api/v1/articles?q={at_limit}"), None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

async fn a_garbage_if_match_is_412(app: &TestApp) {
    let ada = app.user("ada", Role::Author).await;
    let article = app
        .article(&ada, json!({"title": "Guarded", "body": "Text."}))
        .await;
    let uri = article_uri(&article);
    let conditional = |method: Method, value: &'static str, body: Option<Value>| {
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", ada.token))
            .header(header::IF_MATCH, value);
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        request.body(body).unwrap()
    };
    for garbage in [
        "garbage",
        "\"nope\"",
        "W/\"1\"",
        "\"0\"",
        "2",
        "\"\"",
        "\"1\"\"1\"",
        ";;;,,,",
        "' OR 1=1 --",
    ] {
        let patch = conditional(Method::PATCH, garbage, Some(json!({"title": "Changed"})));
        let response = app.send(patch).await;
        assert_problem(
            &response,
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        );
        let put = conditional(
            Method::PUT,
            garbage,
            Some(json!({"title": "Changed", "body": "New."})),
        );
        let response = app.send(put).await;
        assert_problem(
            &response,
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        );
        let response = app.send(conditional(Method::DELETE, garbage, None)).await;
        assert_problem(
            &response,
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        );
    }
    let mut opaque = conditional(Method::PATCH, "x", Some(json!({"title": "Changed"})));
    opaque.headers_mut().insert(
        header::IF_MATCH,
        HeaderValue::from_bytes(b"\"\xff\xfe\"").unwrap(),
    );
    let response = app.send(opaque).await;
    assert_problem(&response, StatusCode::BAD_REQUEST, "bad_request");

    let read = app.get(&uri, Some(&ada.token)).await.json();
    assert_eq!(read["title"], "Guarded");
    assert_eq!(read["version"], 1);

    let matching = conditional(Method::PATCH, "\"1\"", Some(json!({"title": "Changed"})));
    let response = app.send(matching).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json()["version"], 2);
}

on_both_backends!(
    unicode_round_trips_exactly,
    sql_metacharacters_are_stored_and_returned_literally,
    huge_or_malformed_paging_numbers_are_400_not_500,
    out_of_range_or_malformed_path_ids_are_404,
    percent_encoded_junk_in_the_query_is_a_clean_answer,
    very_long_query_values_are_400,
    a_garbage_if_match_is_412,
);
