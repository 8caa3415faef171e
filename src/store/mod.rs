//! The system of record: MySQL/MariaDB in production, SQLite embedded.
//!
//! Both run the same SQL through sqlx's `Any` driver: times are stored as
//! epoch milliseconds and every statement sticks to the dialects' common
//! ground (`?` placeholders, no `RETURNING`). The few differences (ignoring
//! duplicates, upserts, full-text matching, how a write transaction starts)
//! live in [`Dialect`]. Every value from a request is a bound parameter;
//! only whitelisted fragments are ever pushed as SQL text.
//!
//! Every list is a walk along one feed (see `feeds`); every read of an
//! article is one statement, so it sees one version of it; every write is
//! one transaction that answers from its own reads.

mod articles;
mod bulk;
mod comments;
mod error;
mod feeds;
mod lists;
mod position;
mod reads;
mod replicas;
mod rows;
mod search;
mod seed;
mod tags;
mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyQueryResult;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};

pub use crate::labels::ReadTarget;
pub use error::StoreError;
pub use lists::PlanStep;
pub use position::{BadPosition, Position};
pub use reads::{Freshness, Reads};
pub use replicas::{ReplicaHealth, ReplicaStatus};
pub use seed::SeedReport;
pub use users::{Credentials, RefreshOutcome, Session};

use crate::config::DatabaseSettings;

static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("migrations/mysql");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Sqlite,
}

impl Dialect {
    fn insert_ignore(self) -> &'static str {
        match self {
            Dialect::MySql => "INSERT IGNORE",
            Dialect::Sqlite => "INSERT OR IGNORE",
        }
    }

    /// Ends an `INSERT INTO feed_counts ... VALUES ...` so that existing
    /// counts are added to.
    fn add_to_counts(self) -> &'static str {
        match self {
            Dialect::MySql => " ON DUPLICATE KEY UPDATE articles = articles + VALUES(articles)",
            Dialect::Sqlite => {
                " ON CONFLICT (feed_kind, feed_id, status) \
                 DO UPDATE SET articles = articles + excluded.articles"
            }
        }
    }

    /// Ends a `SELECT` that reads rows a write transaction is about to
    /// derive data from (SQLite's write transactions lock the database).
    fn lock_rows(self) -> &'static str {
        match self {
            Dialect::MySql => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }
}

/// Connections of the pool at one moment, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    /// `database.max_connections` plus, on MySQL, `database.write_connections`.
    pub max: u32,
}

/// A write's answer and where in the primary's history it committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    pub value: T,
    /// `None` where there are no positions (SQLite, or a MariaDB without a
    /// binary log, which cannot have replicas).
    pub position: Option<Position>,
}

impl<T> Committed<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Committed<U> {
        Committed {
            value: f(self.value),
            position: self.position,
        }
    }
}

/// A handle to the database: the primary, which every method of its own
/// uses, and the read replicas that [`Store::replica_reads`] hands out.
/// Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The server this handle's statements run on: on the primary, the
    /// connections of writes and of the reads that must be current.
    pool: AnyPool,
    /// The primary's connections for cache fills, apart from `pool`: a
    /// burst of misses queues for these and never delays a write (`None`
    /// on SQLite and on a replica: fills use `pool`).
    fill_pool: Option<AnyPool>,
    dialect: Dialect,
    /// Whether the server is MariaDB (its GTIDs are the commit positions).
    mariadb: bool,
    replicas: Arc<replicas::Replicas>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .field("replicas", &self.replicas.statuses())
            .finish()
    }
}

impl Store {
    /// Opens a pool, and one per replica (connecting lazily, checked in the
    /// background). A SQLite file and its folder are created if missing.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        install_default_drivers();
        let url = settings.url.expose();
        let (dialect, url) = if url.starts_with("mysql:") {
            (Dialect::MySql, url.to_owned())
        } else {
            (Dialect::Sqlite, prepare_sqlite_url(url)?)
        };
        let url = url.as_str();
        let open = |max_connections| async move {
            pool_options(max_connections, settings.acquire_timeout_ms)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        match dialect {
                            Dialect::Sqlite => {
                                conn.execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                     PRAGMA busy_timeout = 5000;",
                                )
                                .await?;
                                Ok(())
                            }
                            Dialect::MySql => prepare_mysql_session(conn).await,
                        }
                    })
                })
                .connect(url)
                .await
        };
        let (pool, fill_pool) = match dialect {
            Dialect::MySql => (
                open(settings.write_connections).await?,
                Some(open(settings.max_connections).await?),
            ),
            // One file, one writer at a time: a pool of its own for writes
            // would only queue them at SQLite's lock instead.
            Dialect::Sqlite => (open(settings.max_connections).await?, None),
        };
        let mariadb = match dialect {
            Dialect::MySql => {
                let version: String = sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(&pool)
                    .await?;
                version.contains("MariaDB")
            }
            Dialect::Sqlite => false,
        };
        let mut store = Self {
            pool,
            fill_pool,
            dialect,
            mariadb,
            replicas: Arc::new(replicas::Replicas::none()),
        };
        if !settings.replica_urls.is_empty() {
            if !mariadb {
                return Err(StoreError::Config(
                    "DATABASE_REPLICA_URLS: read replicas need MariaDB, whose GTIDs give \
                     each write's commit position"
                        .into(),
                ));
            }
            let replicas = Arc::new(replicas::Replicas::open(&store, settings)?);
            replicas::spawn_checks(
                Arc::downgrade(&replicas),
                Duration::from_millis(settings.replica_check_ms),
            );
            store.replicas = replicas;
        }
        Ok(store)
    }

    /// The primary's position now: every write committed so far.
    /// `None` without positions (SQLite, no binary log).
    pub async fn primary_position(&self) -> Result<Option<Position>, StoreError> {
        if !self.mariadb {
            return Ok(None);
        }
        let text: String = sqlx::query_scalar("SELECT @@gtid_binlog_pos")
            .fetch_one(&self.pool)
            .await?;
        Ok(parse_position(&text))
    }

    /// SQLite takes its write lock up front, so two writers never both
    /// hold a read lock that each needs to upgrade.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.dialect {
            Dialect::MySql => self.pool.begin().await?,
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
        })
    }

    /// [`Store::begin_write`] on a connection of the caller's, so that once
    /// the transaction commits, [`Store::committed`] on the same connection
    /// reads where it committed.
    async fn begin_write_on<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> Result<Transaction<'c, Any>, StoreError> {
        Ok(match self.dialect {
            Dialect::MySql => conn.begin().await?,
            Dialect::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        })
    }

    /// `value` with the position of the commit just made on `conn`
    /// (`@@last_gtid`, which MariaDB keeps per session). If it cannot be
    /// read, the write is made but where is unknown: as for a commit left
    /// unconfirmed, the caller makes stale what it changed and answers 503.
    async fn committed<T>(
        &self,
        conn: &mut AnyConnection,
        value: T,
    ) -> Result<Committed<T>, StoreError> {
        let position = if self.mariadb {
            let text: String = sqlx::query_scalar("SELECT @@last_gtid")
                .fetch_one(conn)
                .await
                .map_err(|err| match StoreError::from(err) {
                    StoreError::Unavailable(cause) | StoreError::CommitUnknown(cause) => {
                        StoreError::CommitUnknown(cause)
                    }
                    other => StoreError::CommitUnknown(std::sync::Arc::new(other)),
                })?;
            parse_position(&text)
        } else {
            None
        };
        Ok(Committed { value, position })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Applies pending migrations; safe to run on every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.dialect {
            Dialect::MySql => &MYSQL_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(StoreError::Migrate)?;
        self.run_backfills().await?;
        self.fill_username_keys().await?;
        if !self.replicas.is_empty()
            && let Some(position) = self.primary_position().await?
        {
            self.replicas.set_floor(position);
        }
        Ok(())
    }

    /// Derives what migrations cannot (search postings need the
    /// application's word rules), once; a backfill this version does not
    /// know is left for the version that does.
    async fn run_backfills(&self) -> Result<(), StoreError> {
        let pending: Vec<String> =
            sqlx::query_scalar("SELECT name FROM backfills WHERE done_at IS NULL ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        for name in pending {
            match name.as_str() {
                "search_terms" => self.backfill_search().await?,
                _ => continue,
            }
            tracing::info!(backfill = %name, "backfill done");
            sqlx::query("UPDATE backfills SET done_at = ? WHERE name = ?")
                .bind(crate::domain::time::now().timestamp_millis())
                .bind(&name)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Refreshes the planner's statistics of the tables lists read (after a
    /// bulk load, so plans are chosen as they will be in production).
    pub async fn analyze(&self) -> Result<(), StoreError> {
        let sql = match self.dialect {
            Dialect::MySql => "ANALYZE TABLE articles, feed_entries, feed_counts, users, tags",
            Dialect::Sqlite => "ANALYZE",
        };
        sqlx::query(sql).fetch_all(&self.pool).await?;
        Ok(())
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// This handle's store for cache fills: the same server, on the
    /// connections kept for them.
    fn for_fills(&self) -> Store {
        match &self.fill_pool {
            Some(fills) => Store {
                pool: fills.clone(),
                fill_pool: None,
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// Takes every connection that cache fills on the primary may use and
    /// keeps them until the returned guard is dropped: a burst of slow
    /// misses, for tests.
    #[cfg(feature = "test-hooks")]
    pub async fn hold_fill_connections(
        &self,
    ) -> Result<Vec<sqlx::pool::PoolConnection<Any>>, StoreError> {
        let fills = self.for_fills();
        let max = fills.pool.options().get_max_connections();
        let mut held = Vec::with_capacity(max as usize);
        for _ in 0..max {
            held.push(fills.pool.acquire().await?);
        }
        Ok(held)
    }

    /// The primary's connections, for writes and for fills together.
    pub fn pool_stats(&self) -> PoolStats {
        let stats = |pool: &AnyPool| PoolStats {
            size: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        };
        let writes = stats(&self.pool);
        let Some(fills) = self.fill_pool.as_ref().map(stats) else {
            return writes;
        };
        PoolStats {
            size: writes.size + fills.size,
            idle: writes.idle + fills.idle,
            max: writes.max + fills.max,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(fills) = &self.fill_pool {
            fills.close().await;
        }
    }
}

/// A pool's options. sqlx pings a connection as it goes back to the pool;
/// pinging it again as it comes out would add a round trip to every query
/// (one in three of a miss's exchanges with the database). A connection is
/// pinged before use only if it sat idle for a while (the server may have
/// closed it meanwhile) or a connection failed recently (its siblings may
/// have broken with it).
fn pool_options(max_connections: u32, acquire_timeout_ms: u64) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_millis(acquire_timeout_ms))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE || error::connection_failed_recently() {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// How long a connection may sit in the pool and still be used unchecked.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Every write locks the rows it changes and reads back only what it
/// wrote; under repeatable read, InnoDB would also lock the gaps between
/// index entries, and writers of neighbouring articles and words would
/// deadlock on them.
async fn prepare_mysql_session(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await?;
    Ok(())
}

/// A MariaDB position, `None` when empty (no binary log) or unreadable.
fn parse_position(text: &str) -> Option<Position> {
    text.parse::<Position>()
        .inspect_err(|err| tracing::warn!(error = %err, "unreadable commit position"))
        .ok()
        .filter(|position| !position.is_empty())
}

/// Makes sure the file's folder exists and that SQLite may create the file.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parent = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|_| path != ":memory:") {
        std::fs::create_dir_all(parent).map_err(StoreError::CreateDir)?;
    }
    let mode = if query.contains("mode=") {
        ""
    } else {
        "mode=rwc"
    };
    let query = [query, mode]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    Ok(format!("sqlite://{path}?{query}"))
}

/// The id of the row `result` inserted. MySQL reports it with the result;
/// through `Any`, SQLite does not, so it is asked for on the same connection.
async fn inserted_id(conn: &mut AnyConnection, result: &AnyQueryResult) -> Result<i64, StoreError> {
    match result.last_insert_id() {
        Some(id) => Ok(id),
        None => Ok(sqlx::query_scalar("SELECT last_insert_rowid()")
            .fetch_one(conn)
            .await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_gain_create_mode_and_keep_other_options() {
        let dir = std::env::temp_dir().join("feedgate-url-test");
        let url = format!("sqlite://{}/x.db", dir.display());
        assert_eq!(
            prepare_sqlite_url(&url).unwrap(),
            format!("sqlite://{}/x.db?mode=rwc", dir.display())
        );
        assert!(dir.exists());
        assert_eq!(
            prepare_sqlite_url("sqlite::memory:?cache=shared").unwrap(),
            "sqlite://:memory:?cache=shared&mode=rwc"
        );
    }
}
