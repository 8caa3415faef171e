//! Lists at scale and reads that see one version: every list shape reads an
//! index on MariaDB (never a scan or a sort of a table), an article is never
//! shown half-written, a write answers from its own transaction, and
//! concurrent writers with overlapping tags neither deadlock nor lose data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use feedgate::domain::{
    ArticleFilter, ArticleSort, ArticleStatus, DraftScope, PageRequest, Role, SearchTerms,
};
use feedgate::store::PlanStep;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, mysql_proxy};

const ARTICLES: &str = "/api/v1/articles";

/// Articles the planner test seeds: enough that MariaDB picks plans as it
/// would in production (on a tiny table it scans whatever the indexes).
const PLANNED_ARTICLES: usize = 20_000;

fn filter(status: ArticleStatus, drafts: DraftScope) -> ArticleFilter {
    ArticleFilter {
        author: None,
        tag: None,
        status,
        q: None,
        sort: ArticleSort::default(),
        drafts,
    }
}

/// A scan or a sort of a table: what no list statement may do. Sorting the
/// page (a derived table of at most one page and a row) is fine, as is
/// sorting what a full-text search matched.
fn offending(step: &PlanStep) -> bool {
    if step.table.starts_with("<derived") {
        return false;
    }
    let scans = matches!(step.access.as_str(), "ALL" | "index");
    let sorts = step.extra.contains("filesort") && step.access != "fulltext";
    scans || sorts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_shape_reads_an_index_and_never_scans_or_sorts_a_table() {
    let app = TestApp::new(Backend::MySql).await;
    let store = &app.state.store;
    let hash = app
        .state
        .auth
        .passwords
        .hash("irrelevant")
        .await
        .expect("hashed");
    store.seed(PLANNED_ARTICLES, &hash).await.expect("seeded");
    store.analyze().await.expect("statistics are refreshed");

    let author: String = sqlx_scalar(&app, "SELECT username FROM users ORDER BY id LIMIT 1").await;
    let author_id: i64 = sqlx_scalar(&app, "SELECT id FROM users ORDER BY id LIMIT 1").await;
    let mut shapes: Vec<(&str, ArticleFilter)> = Vec::new();
    let published = filter(ArticleStatus::Published, DraftScope::None);
    shapes.push(("every article", published.clone()));
    shapes.push((
        "an author",
        ArticleFilter {
            author: Some(author.clone()),
            ..published.clone()
        },
    ));
    shapes.push((
        "a tag",
        ArticleFilter {
            tag: Some("rust".into()),
            ..published.clone()
        },
    ));
    shapes.push((
        "an author within a tag",
        ArticleFilter {
            author: Some(author.clone()),
            tag: Some("rust".into()),
            ..published.clone()
        },
    ));
    let search = SearchTerms::parse("cache").expect("a word");
    shapes.push((
        "a search",
        ArticleFilter {
            q: Some(search.clone()),
            ..published.clone()
        },
    ));
    shapes.push((
        "a search within a tag",
        ArticleFilter {
            q: Some(search.clone()),
            tag: Some("rust".into()),
            ..published.clone()
        },
    ));
    shapes.push((
        "a search by an author",
        ArticleFilter {
            q: Some(search),
            author: Some(author.clone()),
            ..published.clone()
        },
    ));
    shapes.push(("every draft", filter(ArticleStatus::Draft, DraftScope::All)));
    let own_drafts = filter(ArticleStatus::Draft, DraftScope::OwnedBy(author_id));
    shapes.push(("one's drafts", own_drafts.clone()));
    shapes.push((
        "one's drafts within a tag",
        ArticleFilter {
            tag: Some("rust".into()),
            ..own_drafts
        },
    ));

    let mut checked = 0;
    for (name, shape) in &shapes {
        for sort in ArticleSort::ALL {
            let list = ArticleFilter {
                sort,
                ..shape.clone()
            };
            let first = store
                .list_articles(&list, PageRequest::number(1, 20).unwrap())
                .await
                .expect("the list is read");
            assert!(!first.items.is_empty(), "precondition: {name} has articles");
            let cursor = first.items[first.items.len() / 2].id;
            for page in [
                PageRequest::number(1, 20).unwrap(),
                PageRequest::number(50, 100).unwrap(),
                PageRequest::after(cursor, 20),
            ] {
                let plan = store
                    .explain_list_articles(&list, &page)
                    .await
                    .expect("explained")
                    .expect("the list can match");
                if std::env::var_os("SHOW_PLANS").is_some() {
                    eprintln!("{name} {} {:?}: {plan:?}", sort.as_param(), page.start);
                }
                let bad: Vec<&PlanStep> = plan.iter().filter(|step| offending(step)).collect();
                assert!(
                    bad.is_empty(),
                    "{name}, sort {}, {:?}: {bad:#?}\nwhole plan: {plan:#?}",
                    sort.as_param(),
                    page.start,
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, shapes.len() * 8 * 3);
}

async fn sqlx_scalar<T>(app: &TestApp, sql: &'static str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + Unpin,
{
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(app.db.url()).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
}

/// Whether the article JSON is one version: its title `v<n>` and its only
/// tag `v<n>` come from the same write.
fn whole(article: &Value) -> bool {
    let title = article["title"].as_str().unwrap_or_default().to_lowercase();
    article["tags"] == json!([title])
}

async fn no_read_mixes_two_versions_of_an_article(backend: Backend) {
    let app = Arc::new(
        TestApp::with_settings(backend, |s| {
            s.cache.l1_max_bytes = 0;
            s.database.max_connections = 8;
            // One author rewrites three articles as fast as it can.
            s.rate_limit.enabled = false;
        })
        .await,
    );
    let ada = app.user("ada", Role::Author).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let article = app
            .article(
                &ada,
                json!({"title": "v0", "body": "Text.", "status": "published", "tags": ["v0"]}),
            )
            .await;
        ids.push(article["id"].as_i64().unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let torn = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for &id in &ids {
        let (app, stop, token) = (app.clone(), stop.clone(), ada.token.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let version = format!("v{n}");
                let body = json!({"title": version.to_uppercase(), "tags": [version]});
                let response = app
                    .patch(&format!("{ARTICLES}/{id}"), body, Some(&token))
                    .await;
                assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            }
        }));
    }
    for reader in 0..4 {
        let (app, stop, torn, reads, ids) = (
            app.clone(),
            stop.clone(),
            torn.clone(),
            reads.clone(),
            ids.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let articles: Vec<Value> = if reader % 2 == 0 {
                    let list = app.get(ARTICLES, None).await.json();
                    list["items"].as_array().cloned().unwrap_or_default()
                } else {
                    let mut one = Vec::new();
                    for id in &ids {
                        one.push(app.get(&format!("{ARTICLES}/{id}"), None).await.json());
                    }
                    one
                };
                for article in &articles {
                    reads.fetch_add(1, Ordering::Relaxed);
                    if !whole(article) {
                        torn.fetch_add(1, Ordering::Relaxed);
                        eprintln!("torn: {article}");
                    }
                }
            }
        }));
    }
    // Until enough articles have been read while the writes go on.
    while reads.load(Ordering::Relaxed) < 400 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("no task panicked");
    }
    let reads = reads.load(Ordering::Relaxed);
    assert_eq!(torn.load(Ordering::Relaxed), 0, "of {reads} reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_read_mixes_two_versions_of_an_article_on_mysql() {
    no_read_mixes_two_versions_of_an_article(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_read_mixes_two_versions_of_an_article_on_sqlite() {
    no_read_mixes_two_versions_of_an_article(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_write_that_answers_an_error_did_not_commit_and_one_that_answers_2xx_did() {
    let proxy = mysql_proxy().await;
    let app = TestApp::with_settings(Backend::MySql, |s| {
        s.database.url = feedgate::config::Secret::new(proxy.rewrite(s.database.url.expose()));
        s.database.acquire_timeout_ms = 500;
        s.cache.l1_max_bytes = 0;
    })
    .await;
    let ada = app.user("ada", Role::Author).await;
    let created = app
        .article(
            &ada,
            json!({"title": "T0", "body": "Text.", "status": "published"}),
        )
        .await;
    let uri = format!("{ARTICLES}/{}", created["id"]);
    let moments: [&[u8]; 5] = [
        b"UPDATE articles",
        b"FROM articles a JOIN users u",
        b"feed_entries",
        b"feed_counts",
        b"COMMIT",
    ];
    let mut outcomes = BTreeMap::new();
    for (n, moment) in moments.iter().cycle().take(15).enumerate() {
        // Fresh connections, so statements travel as text again.
        proxy.cut();
        proxy.restore().await;
        let before = app.get(&uri, None).await.json();
        let wanted = format!("T{}", n + 1);
        proxy.cut_when_client_sends(moment);
        let response = app
            .patch(&uri, json!({"title": wanted}), Some(&ada.token))
            .await;
        proxy.cut();
        proxy.restore().await;
        let after = app.get(&uri, None).await.json();
        let committed = after["title"] == wanted.as_str();
        let key = String::from_utf8_lossy(moment).into_owned();
        *outcomes.entry((key, response.status.as_u16())).or_insert(0) += 1;
        if response.status.is_success() {
            assert!(committed, "answered 2xx but not written: {after}");
        } else {
            assert!(
                !committed,
                "answered {} but the write committed: {after}",
                response.status
            );
            assert_eq!(after, before, "a failed write changed the article");
        }
    }
    eprintln!("outcomes by cut moment: {outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_writers_with_overlapping_tags_never_fail_and_lose_nothing() {
    let app =
        Arc::new(TestApp::with_settings(Backend::MySql, |s| s.database.max_connections = 32).await);
    let mut writers = Vec::new();
    for n in 0..32 {
        writers.push(app.user(&format!("writer{n}"), Role::Author).await);
    }
    let tags = ["rust", "web", "db", "cache", "ops", "api"];
    let mut tasks = Vec::new();
    for (n, writer) in writers.into_iter().enumerate() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..6 {
                let mut picked: Vec<String> = tags
                    .iter()
                    .enumerate()
                    .filter(|(t, _)| (n + i + t) % 3 != 0)
                    .map(|(_, tag)| (*tag).to_owned())
                    .collect();
                picked.push(format!("w{n}"));
                let body = json!({"title": format!("W{n} {i}"), "body": "Text.",
                                  "status": "published", "tags": picked});
                let response = app.post(ARTICLES, body, Some(&writer.token)).await;
                assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
                let id = response.json()["id"].as_i64().unwrap();
                let mut expected = picked.clone();
                // Then change the tags of the article written before.
                if let Some((previous, _)) = written.last() {
                    let retag: Vec<String> = picked.iter().rev().take(3).cloned().collect();
                    let response = app
                        .patch(
                            &format!("{ARTICLES}/{previous}"),
                            json!({"tags": retag}),
                            Some(&writer.token),
                        )
                        .await;
                    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
                    let last = written.len() - 1;
                    written[last].1 = retag;
                }
                expected.sort();
                written.push((id, expected));
            }
            written
        }));
    }
    let mut everything = Vec::new();
    for task in tasks {
        everything.extend(task.await.expect("no writer saw an error"));
    }
    assert_eq!(everything.len(), 32 * 6);

    let mut per_tag: BTreeMap<String, i64> = BTreeMap::new();
    for (id, tags) in &everything {
        let mut tags = tags.clone();
        tags.sort();
        tags.dedup();
        let article = app.get(&format!("{ARTICLES}/{id}"), None).await.json();
        assert_eq!(article["tags"], json!(tags), "article {id}");
        for tag in tags {
            *per_tag.entry(tag).or_default() += 1;
        }
    }
    let listed = app.get("/api/v1/tags?per_page=100", None).await.json();
    let counted: BTreeMap<String, i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["articles"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, per_tag, "kept counts match the articles");
    let total = app.get(ARTICLES, None).await.json()["pagination"]["total"].clone();
    assert_eq!(total, json!(everything.len()));
}
