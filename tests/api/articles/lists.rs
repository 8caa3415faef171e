//! Article lists: pages by number and by cursor, sorts, filters, search,
//! and which drafts each caller sees.

use axum::http::{Method, StatusCode, header};
use feedgate::domain::{ArticleSort, Role};
use serde_json::{Value, json};

use super::{ARTICLES, id_of, ids, list_uri, publish_many, send_with, set_times};
use crate::on_both_backends;
use crate::support::TestApp;

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
    // Punctuation alone has no word: a 400 naming q.
    for q in ["%", "'", "--", "!?", "\u{200e}"] {
        let response = app.get(&list_uri(&[("q", q)]), None).await;
        let problem = response.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], "q", "{q:?}");
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
            if field == "q" && attack == "\\" {
                // No word to search for.
                response.problem(StatusCode::BAD_REQUEST);
                continue;
            }
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

on_both_backends!(
    lists_leave_out_bodies,
    the_default_list_shows_published_articles_newest_first,
    a_list_answers_an_empty_304_to_its_etag,
    pagination_metadata_and_links_follow_the_pages,
    page_numbers_past_the_offset_cap_point_to_after,
    cursor_pages_follow_the_named_article_in_every_sort_and_filter,
    an_unknown_or_invisible_cursor_is_not_found_naming_after,
    page_zero_and_a_non_numeric_page_are_bad_requests,
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
);
