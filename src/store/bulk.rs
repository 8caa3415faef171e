//! Bulk loads (MySQL): millions of rows go into a copy of a table without
//! any of its indexes, the indexes are built once by sorting, and the copy
//! is swapped in. Inserting the same rows into indexes in random order is
//! several times slower once they outgrow the buffer pool.
//!
//! Only for an empty table (a fresh database being seeded): the swap
//! replaces it. Otherwise rows go in place.

use sqlx::AnyConnection;

use super::{Dialect, Store, StoreError};

/// Where a bulk writer puts the rows of one table.
pub(super) struct Load {
    table: &'static str,
    /// Set while rows go to `<table>_load`: the index definitions to build.
    indexes: Option<Vec<String>>,
    load_table: String,
}

impl Load {
    /// The table to insert into now.
    pub fn target(&self) -> &str {
        match self.indexes {
            Some(_) => &self.load_table,
            None => self.table,
        }
    }
}

impl Store {
    /// A load table for `table` if it is empty on MySQL, else in place.
    pub(super) async fn start_load(&self, table: &'static str) -> Result<Load, StoreError> {
        let load_table = format!("{table}_load");
        let in_place = Load {
            table,
            indexes: None,
            load_table: load_table.clone(),
        };
        if self.dialect != Dialect::MySql {
            return Ok(in_place);
        }
        let mut conn = self.pool.acquire().await?;
        if !is_empty(&mut conn, table).await? {
            return Ok(in_place);
        }
        let indexes = indexes_of(&mut conn, table).await?;
        run(&mut conn, format!("DROP TABLE IF EXISTS {load_table}")).await?;
        run(&mut conn, format!("CREATE TABLE {load_table} LIKE {table}")).await?;
        let mut drops = Vec::with_capacity(indexes.len());
        let mut adds = Vec::with_capacity(indexes.len());
        for (name, unique, columns) in indexes {
            if name == "PRIMARY" {
                drops.push("DROP PRIMARY KEY".to_owned());
                adds.push(format!("ADD PRIMARY KEY ({columns})"));
            } else {
                let kind = if unique { "UNIQUE KEY" } else { "KEY" };
                drops.push(format!("DROP INDEX {name}"));
                adds.push(format!("ADD {kind} {name} ({columns})"));
            }
        }
        if !drops.is_empty() {
            run(
                &mut conn,
                format!("ALTER TABLE {load_table} {}", drops.join(", ")),
            )
            .await?;
        }
        Ok(Load {
            indexes: Some(adds),
            ..in_place
        })
    }

    /// Builds the load table's indexes and swaps it in, if the table is
    /// still empty; else copies the rows over.
    pub(super) async fn finish_load(&self, load: Load) -> Result<(), StoreError> {
        let Some(indexes) = load.indexes else {
            return Ok(());
        };
        let (table, load_table) = (load.table, load.load_table);
        let mut conn = self.pool.acquire().await?;
        if !indexes.is_empty() {
            run(
                &mut conn,
                format!("ALTER TABLE {load_table} {}", indexes.join(", ")),
            )
            .await?;
        }
        let finish = if is_empty(&mut conn, table).await? {
            [
                format!("RENAME TABLE {table} TO {table}_old, {load_table} TO {table}"),
                format!("DROP TABLE {table}_old"),
            ]
        } else {
            [
                format!("INSERT INTO {table} SELECT * FROM {load_table}"),
                format!("DROP TABLE {load_table}"),
            ]
        };
        for statement in finish {
            run(&mut conn, statement).await?;
        }
        Ok(())
    }
}

async fn is_empty(conn: &mut AnyConnection, table: &str) -> Result<bool, StoreError> {
    let any: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {table} LIMIT 1"
    )))
    .fetch_optional(conn)
    .await?;
    Ok(any.is_none())
}

/// A table's indexes, the primary key included: name, whether unique, and
/// column list, as the database has them (so a load never drifts from the
/// migrations).
async fn indexes_of(
    conn: &mut AnyConnection,
    table: &str,
) -> Result<Vec<(String, bool, String)>, StoreError> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT index_name, MIN(non_unique), \
         GROUP_CONCAT(column_name ORDER BY seq_in_index SEPARATOR ', ') \
         FROM information_schema.statistics \
         WHERE table_schema = DATABASE() AND table_name = ? \
         GROUP BY index_name ORDER BY index_name",
    )
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, non_unique, columns)| (name, non_unique == 0, columns))
        .collect())
}

/// Runs DDL built from the database's own catalogue and fixed names.
async fn run(conn: &mut AnyConnection, statement: String) -> Result<(), StoreError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(conn)
        .await?;
    Ok(())
}
