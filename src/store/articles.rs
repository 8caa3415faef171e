//! Articles: read whole in one statement, written in one transaction that
//! also keeps their feeds, reports what moved in them, and answers from its
//! own reads. Each write is one attempt: the write layer decides whether a
//! contended or overtaken write is made again.

use rand::distr::{Alphanumeric, SampleString};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, QueryBuilder};

use super::feeds::{Indexed, TagRef, reindex};
use super::rows::{ArticleRow, article_columns, tag_list};
use super::search::reindex_words;
use super::{Committed, Store, StoreError, inserted_id};
use crate::domain::time::now;
use crate::domain::{Article, ArticleContent, ArticleStatus, FeedChanges};

/// How often a derived slug that collides is retried with a random suffix.
const SLUG_ATTEMPTS: usize = 4;

const FIND_ARTICLE: &str = concat!(
    "SELECT ",
    article_columns!(),
    ", a.body FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = ?"
);

impl Store {
    /// An article with its body and tags, as of one moment.
    pub async fn find_article(&self, id: i64) -> Result<Option<Article>, StoreError> {
        let row: Option<ArticleRow> = sqlx::query_as(FIND_ARTICLE)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(ArticleRow::into_article))
    }

    /// Inserts an article. A slug derived from the title (`derived_slug`) that
    /// is taken gets a random suffix; a slug the client chose is a conflict.
    pub async fn create_article(
        &self,
        author_id: i64,
        content: &ArticleContent,
        derived_slug: bool,
    ) -> Result<Committed<(Article, FeedChanges)>, StoreError> {
        self.ensure_tags(&content.tags).await?;
        let mut slug = content.slug.clone();
        for attempt in 1..=SLUG_ATTEMPTS {
            match self.insert_article(author_id, content, &slug).await {
                Err(StoreError::Duplicate) if derived_slug && attempt < SLUG_ATTEMPTS => {
                    let suffix = Alphanumeric.sample_string(&mut rand::rng(), 6);
                    slug = format!("{}-{}", content.slug, suffix.to_ascii_lowercase());
                }
                other => return other,
            }
        }
        Err(StoreError::Duplicate)
    }

    async fn insert_article(
        &self,
        author_id: i64,
        content: &ArticleContent,
        slug: &str,
    ) -> Result<Committed<(Article, FeedChanges)>, StoreError> {
        let now = now().timestamp_millis();
        let published_at = (content.status == ArticleStatus::Published).then_some(now);
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write_on(&mut conn).await?;
        let insert = sqlx::query(
            "INSERT INTO articles (slug, title, summary, body, status, tag_list, author_id, \
             created_at, updated_at, published_at, version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        );
        let result = bind_content(insert, slug, content)
            .bind(author_id)
            .bind(now)
            .bind(now)
            .bind(published_at)
            .execute(&mut *tx)
            .await?;
        let id = inserted_id(&mut tx, &result).await?;
        let written = self.index_article(&mut tx, id, &content.tags).await?;
        tx.commit().await.map_err(StoreError::at_commit)?;
        self.committed(&mut conn, written).await
    }

    /// Replaces an article's content if it is still at `expected_version`.
    pub async fn update_article(
        &self,
        id: i64,
        expected_version: i64,
        content: &ArticleContent,
    ) -> Result<Committed<(Article, FeedChanges)>, StoreError> {
        self.ensure_tags(&content.tags).await?;
        let now = now().timestamp_millis();
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write_on(&mut conn).await?;
        let update = sqlx::query(
            "UPDATE articles SET slug = ?, title = ?, summary = ?, body = ?, status = ?, \
             tag_list = ?, updated_at = ?, \
             published_at = CASE WHEN ? = 'published' THEN COALESCE(published_at, ?) ELSE NULL END, \
             version = version + 1 \
             WHERE id = ? AND version = ?",
        );
        let result = bind_content(update, &content.slug, content)
            .bind(now)
            .bind(content.status.as_str())
            .bind(now)
            .bind(id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(missing_or_stale(&mut tx, id).await);
        }
        let written = self.index_article(&mut tx, id, &content.tags).await?;
        tx.commit().await.map_err(StoreError::at_commit)?;
        self.committed(&mut conn, written).await
    }

    /// Deletes an article (its comments and feed entries go with it) if it
    /// is still at `expected_version`.
    pub async fn delete_article(
        &self,
        id: i64,
        expected_version: i64,
    ) -> Result<Committed<FeedChanges>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write_on(&mut conn).await?;
        let result = sqlx::query("DELETE FROM articles WHERE id = ? AND version = ?")
            .bind(id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(missing_or_stale(&mut tx, id).await);
        }
        let feeds = reindex(&mut tx, self.dialect, id, None).await?;
        reindex_words(&mut tx, id, None).await?;
        tx.commit().await.map_err(StoreError::at_commit)?;
        self.committed(&mut conn, feeds).await
    }

    /// Reads back the article just written (in its transaction) and puts it
    /// in the feeds and search postings of its new state.
    async fn index_article(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        tags: &[String],
    ) -> Result<(Article, FeedChanges), StoreError> {
        let row: ArticleRow = sqlx::query_as(FIND_ARTICLE)
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        let article = row.into_article();
        let tags = tag_refs(conn, tags).await?;
        let indexed = Indexed::new(&article, &tags);
        reindex_words(conn, id, Some(&indexed)).await?;
        let now = Some((indexed, article.author.username.as_str()));
        let feeds = reindex(conn, self.dialect, id, now).await?;
        Ok((article, feeds))
    }

    /// Makes sure these tags exist, before the write that uses them: a tag
    /// is a name only, so one left unused by a failed write does no harm,
    /// and the write's transaction takes no locks on the tag index.
    pub(super) async fn ensure_tags(&self, tags: &[String]) -> Result<(), StoreError> {
        if tags.is_empty() {
            return Ok(());
        }
        let known = tag_refs(&mut *self.pool.acquire().await?, tags).await?;
        let mut missing: Vec<&String> = tags
            .iter()
            .filter(|tag| !known.iter().any(|(_, name)| name == *tag))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // In name order, so concurrent inserts lock the index in one order.
        missing.sort_unstable();
        let mut insert = QueryBuilder::<Any>::new(format!(
            "{} INTO tags (name) ",
            self.dialect.insert_ignore()
        ));
        insert.push_values(&missing, |mut row, tag| {
            row.push_bind((*tag).clone());
        });
        insert.build().execute(&self.pool).await?;
        Ok(())
    }
}

/// Binds the columns every article write sets, in this order: slug, title,
/// summary, body, status, tags.
fn bind_content<'q>(
    query: Query<'q, Any, AnyArguments>,
    slug: &'q str,
    content: &'q ArticleContent,
) -> Query<'q, Any, AnyArguments> {
    query
        .bind(slug)
        .bind(&content.title)
        .bind(&content.summary)
        .bind(&content.body)
        .bind(content.status.as_str())
        .bind(tag_list(&content.tags))
}

/// The ids of these tags (those that exist).
pub(super) async fn tag_refs(
    conn: &mut AnyConnection,
    tags: &[String],
) -> Result<Vec<TagRef>, StoreError> {
    if tags.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = QueryBuilder::<Any>::new("SELECT id, name FROM tags WHERE name IN (");
    let mut names = query.separated(", ");
    for tag in tags {
        names.push_bind(tag.clone());
    }
    query.push(")");
    Ok(query.build_query_as().fetch_all(conn).await?)
}

/// Why an update or delete matched no row: the article is gone, or it has
/// moved past the version the caller had.
async fn missing_or_stale(conn: &mut AnyConnection, id: i64) -> StoreError {
    match sqlx::query("SELECT 1 FROM articles WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await
    {
        Ok(Some(_)) => StoreError::Stale,
        Ok(None) => StoreError::NotFound,
        Err(err) => err.into(),
    }
}
