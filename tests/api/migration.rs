//! A database written by the version before feeds and search postings:
//! migrating it keeps every article, list, count and tag, and makes its
//! titles searchable.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::AnyPool;
use sqlx::any::install_default_drivers;

use crate::support::{Backend, TestDb};

/// The last migration before feeds.
const BEFORE_FEEDS: i64 = 20261125000001;

/// A fresh database migrated up to `version` only, and a pool on it for
/// writing what an older version would have written.
pub(crate) async fn database_at(backend: Backend, version: i64) -> (TestDb, AnyPool) {
    install_default_drivers();
    let db = TestDb::create(backend).await;
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url()),
        Backend::MySql => db.url().to_owned(),
    };
    let pool = AnyPool::connect(&url).await.expect("the database opens");
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::MySql => sqlx::migrate!("migrations/mysql"),
    };
    migrator
        .run_to(version, &pool)
        .await
        .expect("the old schema");
    (db, pool)
}

async fn old_database(backend: Backend) -> TestDb {
    let (db, pool) = database_at(backend, BEFORE_FEEDS).await;
    let statements = [
        "INSERT INTO users (id, username, password_hash, role, created_at, updated_at) \
         VALUES (1, 'ada', 'x', 'author', 1, 1), (2, 'bob', 'x', 'author', 1, 1)",
        "INSERT INTO tags (id, name) VALUES (1, 'rust'), (2, 'web')",
        "INSERT INTO articles (id, slug, title, title_search, summary, body, status, author_id, \
         created_at, updated_at, published_at, version) VALUES \
         (1, 'one', 'Émile learns Rust', 'émile learns rust', 's', 'b', 'published', 1, 100, 100, 100, 1), \
         (2, 'two', 'Web caching', 'web caching', 's', 'b', 'published', 2, 200, 250, 200, 2), \
         (3, 'three', 'Secret rust plans', 'secret rust plans', 's', 'b', 'draft', 1, 300, 300, NULL, 1), \
         (4, 'four', 'Rust on the web', 'rust on the web', 's', 'b', 'published', 1, 400, 400, 400, 1)",
        "INSERT INTO article_tags (article_id, tag_id) VALUES (1, 1), (2, 2), (3, 1), (4, 1), (4, 2)",
        "INSERT INTO comments (article_id, author_id, body, created_at) VALUES (4, 2, 'Nice', 500)",
    ];
    for statement in statements {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .unwrap_or_else(|err| panic!("{statement}: {err}"));
    }
    pool.close().await;
    db
}

fn ids(list: &Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {list}"))
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

async fn a_migrated_database_keeps_its_lists_counts_and_tags_and_can_be_searched(backend: Backend) {
    let db = old_database(backend).await;
    let app = crate::support::TestApp::on_database(db).await;
    let get = async |uri: &str| {
        let response = app.get(uri, None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{uri}: {}",
            response.text()
        );
        response.json()
    };

    let all = get("/api/v1/articles").await;
    assert_eq!(ids(&all), [4, 2, 1]);
    assert_eq!(all["pagination"]["total"], 3);
    assert_eq!(all["items"][0]["tags"], json!(["rust", "web"]));
    assert_eq!(
        ids(&get("/api/v1/articles?sort=-updated_at").await),
        [4, 2, 1]
    );
    assert_eq!(ids(&get("/api/v1/articles?tag=rust").await), [4, 1]);
    assert_eq!(
        get("/api/v1/articles?tag=rust").await["pagination"]["total"],
        2
    );
    assert_eq!(ids(&get("/api/v1/articles?author=ada").await), [4, 1]);
    assert_eq!(ids(&get("/api/v1/articles?after=4&per_page=1").await), [2]);
    assert_eq!(
        get("/api/v1/tags").await["items"],
        json!([{"name": "rust", "articles": 2}, {"name": "web", "articles": 2}])
    );
    assert_eq!(ids(&get("/api/v1/articles?q=rust").await), [4, 1]);
    assert_eq!(ids(&get("/api/v1/articles?q=emile").await), [1]);
    assert_eq!(ids(&get("/api/v1/articles?q=web+rust").await), [4]);
    assert_eq!(
        get("/api/v1/articles/4").await["tags"],
        json!(["rust", "web"])
    );
    assert_eq!(
        get("/api/v1/articles/4/comments").await["pagination"]["total"],
        1
    );
    let draft = app.get("/api/v1/articles/3", None).await;
    assert_eq!(draft.status, StatusCode::NOT_FOUND, "drafts stay hidden");
}

#[tokio::test]
async fn a_migrated_mariadb_database_keeps_its_lists_counts_and_tags_and_can_be_searched() {
    a_migrated_database_keeps_its_lists_counts_and_tags_and_can_be_searched(Backend::MySql).await;
}

#[tokio::test]
async fn a_migrated_sqlite_database_keeps_its_lists_counts_and_tags_and_can_be_searched() {
    a_migrated_database_keeps_its_lists_counts_and_tags_and_can_be_searched(Backend::Sqlite).await;
}
