//! Search postings: each word of each title with the article's status,
//! creation time and author, keyed `(term, status, created_at, article_id)`
//! so that `q` walks one word's postings newest first, and indexed by
//! `(article_id, term)` so the other words are checked by key.

use sqlx::{Any, AnyConnection, QueryBuilder};

use super::feeds::Indexed;
use super::{Dialect, Store, StoreError};
use crate::domain::{ArticleStatus, words};

pub(super) const SEARCH_TERMS: &str = "search_terms";

/// Rows per statement: 5 parameters each stays under every backend's limit.
const POSTINGS_PER_INSERT: usize = 4000;

/// Articles a backfill indexes per transaction.
const BACKFILL_BATCH: i64 = 2000;

/// Adds the postings of these articles' titles to `table` (the postings,
/// or a bulk load's copy); `ignore` skips postings already there.
pub(super) async fn add_postings_to(
    conn: &mut AnyConnection,
    table: &str,
    articles: &[Indexed<'_>],
    ignore: Option<Dialect>,
) -> Result<(), StoreError> {
    let postings: Vec<(String, &Indexed)> = articles
        .iter()
        .flat_map(|article| {
            words(article.title)
                .into_iter()
                .map(move |word| (word, article))
        })
        .collect();
    let verb = ignore.map_or("INSERT", Dialect::insert_ignore);
    for chunk in postings.chunks(POSTINGS_PER_INSERT) {
        let mut insert = QueryBuilder::<Any>::new(format!(
            "{verb} INTO {table} (term, status, created_at, article_id, author_id) "
        ));
        insert.push_values(chunk, |mut row, (word, article)| {
            row.push_bind(word.clone())
                .push_bind(article.status.as_str())
                .push_bind(article.created_at)
                .push_bind(article.id)
                .push_bind(article.author_id);
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces an article's postings with those of `now` (none if deleted);
/// runs inside the write's transaction.
pub(super) async fn reindex_words(
    conn: &mut AnyConnection,
    article_id: i64,
    now: Option<&Indexed<'_>>,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM search_terms WHERE article_id = ?")
        .bind(article_id)
        .execute(&mut *conn)
        .await?;
    match now {
        Some(article) => {
            add_postings_to(conn, SEARCH_TERMS, std::slice::from_ref(article), None).await
        }
        None => Ok(()),
    }
}

impl Store {
    /// Writes the postings of articles that existed before search did, a
    /// batch per transaction; safe to run again or on several instances.
    pub(super) async fn backfill_search(&self) -> Result<(), StoreError> {
        let mut after = 0_i64;
        loop {
            let mut tx = self.begin_write().await?;
            let rows: Vec<(i64, String, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, status, created_at, author_id, title FROM articles \
                     WHERE id > ? ORDER BY id LIMIT ?{}",
                    self.dialect.lock_rows()
                )))
                .bind(after)
                .bind(BACKFILL_BATCH)
                .fetch_all(&mut *tx)
                .await?;
            let Some(last) = rows.last() else {
                tx.commit().await?;
                return Ok(());
            };
            after = last.0;
            let articles: Vec<Indexed> = rows
                .iter()
                .map(|(id, status, created_at, author_id, title)| Indexed {
                    id: *id,
                    status: ArticleStatus::parse(status).unwrap_or_default(),
                    author_id: *author_id,
                    created_at: *created_at,
                    updated_at: *created_at,
                    published_at: 0,
                    title,
                    tags: &[],
                })
                .collect();
            add_postings_to(&mut tx, SEARCH_TERMS, &articles, Some(self.dialect)).await?;
            tx.commit().await?;
        }
    }
}
