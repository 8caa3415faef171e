//! Bulk loads of feed entries (MySQL): millions of rows go into a copy of
//! `feed_entries` without its sort indexes, the indexes are built once by
//! sorting, and the copy is swapped in. Inserting the same rows into four
//! indexes in random order would be several times slower once the indexes
//! outgrow the buffer pool.
//!
//! Only for an empty `feed_entries` (a fresh database being seeded): the
//! swap replaces the table. Anything else inserts in place.

use sqlx::AnyConnection;

use super::feeds::FEED_ENTRIES;
use super::{Dialect, Store, StoreError};

pub(super) const LOAD_TABLE: &str = "feed_entries_load";

/// Where a seed writes feed entries.
pub(super) enum FeedTarget {
    InPlace,
    /// A copy without sort indexes, to be finished by [`Store::finish_load`];
    /// holds the index definitions to rebuild.
    Load(Vec<String>),
}

impl FeedTarget {
    pub fn table(&self) -> &'static str {
        match self {
            FeedTarget::InPlace => FEED_ENTRIES,
            FeedTarget::Load(_) => LOAD_TABLE,
        }
    }
}

impl Store {
    /// A load table if `feed_entries` is empty on MySQL, else in place.
    pub(super) async fn start_load(&self) -> Result<FeedTarget, StoreError> {
        if self.dialect != Dialect::MySql {
            return Ok(FeedTarget::InPlace);
        }
        let mut conn = self.pool.acquire().await?;
        let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM feed_entries LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        if any.is_some() {
            return Ok(FeedTarget::InPlace);
        }
        let indexes = sort_indexes(&mut conn, FEED_ENTRIES).await?;
        let setup = [
            format!("DROP TABLE IF EXISTS {LOAD_TABLE}"),
            format!("CREATE TABLE {LOAD_TABLE} LIKE {FEED_ENTRIES}"),
        ];
        for statement in setup {
            run(&mut conn, statement).await?;
        }
        let drops: Vec<String> = indexes
            .iter()
            .map(|(name, _)| format!("DROP INDEX {name}"))
            .collect();
        if !drops.is_empty() {
            run(
                &mut conn,
                format!("ALTER TABLE {LOAD_TABLE} {}", drops.join(", ")),
            )
            .await?;
        }
        Ok(FeedTarget::Load(
            indexes
                .into_iter()
                .map(|(name, columns)| format!("ADD KEY {name} ({columns})"))
                .collect(),
        ))
    }

    /// Builds the load table's indexes and swaps it in, if `feed_entries`
    /// is still empty; else copies the rows over.
    pub(super) async fn finish_load(&self, target: FeedTarget) -> Result<(), StoreError> {
        let FeedTarget::Load(indexes) = target else {
            return Ok(());
        };
        let mut conn = self.pool.acquire().await?;
        if !indexes.is_empty() {
            run(
                &mut conn,
                format!("ALTER TABLE {LOAD_TABLE} {}", indexes.join(", ")),
            )
            .await?;
        }
        let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM feed_entries LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        let finish = if any.is_none() {
            [
                format!(
                    "RENAME TABLE {FEED_ENTRIES} TO {FEED_ENTRIES}_old, \
                     {LOAD_TABLE} TO {FEED_ENTRIES}"
                ),
                format!("DROP TABLE {FEED_ENTRIES}_old"),
            ]
        } else {
            [
                format!("INSERT INTO {FEED_ENTRIES} SELECT * FROM {LOAD_TABLE}"),
                format!("DROP TABLE {LOAD_TABLE}"),
            ]
        };
        for statement in finish {
            run(&mut conn, statement).await?;
        }
        Ok(())
    }
}

/// A table's secondary indexes: name and column list, as the database has
/// them (so the load never drifts from the migrations).
async fn sort_indexes(
    conn: &mut AnyConnection,
    table: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT index_name, GROUP_CONCAT(column_name ORDER BY seq_in_index SEPARATOR ', ') \
         FROM information_schema.statistics \
         WHERE table_schema = DATABASE() AND table_name = ? AND index_name <> 'PRIMARY' \
         GROUP BY index_name ORDER BY index_name",
    )
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Runs DDL built from the database's own catalogue and fixed names.
async fn run(conn: &mut AnyConnection, statement: String) -> Result<(), StoreError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(conn)
        .await?;
    Ok(())
}
