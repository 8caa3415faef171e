use std::collections::HashMap;

use rand::distr::{Alphanumeric, SampleString};
use sqlx::{Any, AnyConnection, QueryBuilder};

use super::rows::{ArticleRow, article_columns};
use super::{Store, StoreError, inserted_id, like_pattern};
use crate::domain::time::now;
use crate::domain::{
    Article, ArticleContent, ArticleFilter, ArticleSort, ArticleStatus, DraftScope, PageRequest,
    Paged,
};

/// How often a derived slug that collides is retried with a random suffix.
const SLUG_ATTEMPTS: usize = 4;

impl Store {
    pub async fn find_article(&self, id: i64) -> Result<Option<Article>, StoreError> {
        let sql = concat!(
            "SELECT ",
            article_columns!(),
            ", a.body FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = ?"
        );
        let Some(row) = sqlx::query_as::<_, ArticleRow>(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await?;
        let mut tags = load_tags(&mut conn, &[id]).await?;
        Ok(Some(row.into_article(tags.remove(&id).unwrap_or_default())))
    }

    /// One page of articles (without bodies) and the number matching in all.
    pub async fn list_articles(
        &self,
        filter: &ArticleFilter,
        page: PageRequest,
    ) -> Result<Paged<Article>, StoreError> {
        let mut count = QueryBuilder::<Any>::new("SELECT COUNT(*) FROM articles a");
        push_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        // The page is picked from `articles` alone (so the planner walks the
        // sort index and stops at LIMIT), then joined to its authors.
        let mut select = QueryBuilder::<Any>::new(concat!(
            "SELECT ",
            article_columns!(),
            " FROM (SELECT a.id, a.slug, a.title, a.summary, a.status, a.author_id, \
             a.created_at, a.updated_at, a.published_at, a.version FROM articles a"
        ));
        push_filter(&mut select, filter);
        select
            .push(order_by(filter.sort))
            .push(" LIMIT ")
            .push_bind(i64::from(page.per_page))
            .push(" OFFSET ")
            .push_bind(i64::try_from(page.offset()).unwrap_or(i64::MAX))
            .push(") a JOIN users u ON u.id = a.author_id")
            .push(order_by(filter.sort));
        let rows: Vec<ArticleRow> = select.build_query_as().fetch_all(&self.pool).await?;

        let ids: Vec<i64> = rows.iter().map(ArticleRow::id).collect();
        let mut conn = self.pool.acquire().await?;
        let mut tags = load_tags(&mut conn, &ids).await?;
        let items = rows
            .into_iter()
            .map(|row| {
                let id = row.id();
                row.into_article(tags.remove(&id).unwrap_or_default())
            })
            .collect();
        Ok(Paged {
            items,
            page,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    /// Inserts an article. A slug derived from the title (`derived_slug`) that
    /// is taken gets a random suffix; a slug the client chose is a conflict.
    pub async fn create_article(
        &self,
        author_id: i64,
        content: &ArticleContent,
        derived_slug: bool,
    ) -> Result<Article, StoreError> {
        let mut slug = content.slug.clone();
        for attempt in 1..=SLUG_ATTEMPTS {
            match self.insert_article(author_id, content, &slug).await {
                Err(StoreError::Duplicate) if derived_slug && attempt < SLUG_ATTEMPTS => {
                    let suffix = Alphanumeric.sample_string(&mut rand::rng(), 6);
                    slug = format!("{}-{}", content.slug, suffix.to_ascii_lowercase());
                }
                Ok(id) => return self.find_article(id).await?.ok_or(StoreError::NotFound),
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Duplicate)
    }

    async fn insert_article(
        &self,
        author_id: i64,
        content: &ArticleContent,
        slug: &str,
    ) -> Result<i64, StoreError> {
        let now = now().timestamp_millis();
        let published_at = (content.status == ArticleStatus::Published).then_some(now);
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(
            "INSERT INTO articles (slug, title, title_search, summary, body, status, author_id, \
             created_at, updated_at, published_at, version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        )
        .bind(slug)
        .bind(&content.title)
        .bind(content.title.to_lowercase())
        .bind(&content.summary)
        .bind(&content.body)
        .bind(content.status.as_str())
        .bind(author_id)
        .bind(now)
        .bind(now)
        .bind(published_at)
        .execute(&mut *tx)
        .await?;
        let id = inserted_id(&mut tx, &result).await?;
        self.replace_tags(&mut tx, id, &content.tags).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces an article's content if it is still at `expected_version`.
    pub async fn update_article(
        &self,
        id: i64,
        expected_version: i64,
        content: &ArticleContent,
    ) -> Result<Article, StoreError> {
        let now = now().timestamp_millis();
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(
            "UPDATE articles SET slug = ?, title = ?, title_search = ?, summary = ?, body = ?, status = ?, \
             updated_at = ?, \
             published_at = CASE WHEN ? = 'published' THEN COALESCE(published_at, ?) ELSE NULL END, \
             version = version + 1 \
             WHERE id = ? AND version = ?",
        )
        .bind(&content.slug)
        .bind(&content.title)
        .bind(content.title.to_lowercase())
        .bind(&content.summary)
        .bind(&content.body)
        .bind(content.status.as_str())
        .bind(now)
        .bind(content.status.as_str())
        .bind(now)
        .bind(id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            drop(tx);
            return Err(self.missing_or_stale(id).await);
        }
        self.replace_tags(&mut tx, id, &content.tags).await?;
        tx.commit().await?;
        self.find_article(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes an article (its comments and tag links go with it).
    pub async fn delete_article(&self, id: i64, expected_version: i64) -> Result<(), StoreError> {
        let result = sqlx::query("DELETE FROM articles WHERE id = ? AND version = ?")
            .bind(id)
            .bind(expected_version)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(self.missing_or_stale(id).await);
        }
        Ok(())
    }

    async fn missing_or_stale(&self, id: i64) -> StoreError {
        match sqlx::query("SELECT 1 FROM articles WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
        {
            Ok(Some(_)) => StoreError::Stale,
            Ok(None) => StoreError::NotFound,
            Err(err) => err.into(),
        }
    }

    async fn replace_tags(
        &self,
        conn: &mut AnyConnection,
        article_id: i64,
        tags: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM article_tags WHERE article_id = ?")
            .bind(article_id)
            .execute(&mut *conn)
            .await?;
        if tags.is_empty() {
            return Ok(());
        }
        let mut insert = QueryBuilder::<Any>::new(format!(
            "{} INTO tags (name) ",
            self.dialect.insert_ignore()
        ));
        insert.push_values(tags, |mut row, tag| {
            row.push_bind(tag.clone());
        });
        insert.build().execute(&mut *conn).await?;

        let mut link =
            QueryBuilder::<Any>::new("INSERT INTO article_tags (article_id, tag_id) SELECT ");
        link.push_bind(article_id)
            .push(", id FROM tags WHERE name IN (");
        let mut names = link.separated(", ");
        for tag in tags {
            names.push_bind(tag.clone());
        }
        link.push(")");
        link.build().execute(&mut *conn).await?;
        Ok(())
    }
}

/// Tags of each article, sorted by name.
async fn load_tags(
    conn: &mut AnyConnection,
    article_ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, StoreError> {
    let mut tags: HashMap<i64, Vec<String>> = HashMap::with_capacity(article_ids.len());
    if article_ids.is_empty() {
        return Ok(tags);
    }
    let mut query = QueryBuilder::<Any>::new(
        "SELECT at.article_id, t.name FROM article_tags at \
         JOIN tags t ON t.id = at.tag_id WHERE at.article_id IN (",
    );
    let mut ids = query.separated(", ");
    for id in article_ids {
        ids.push_bind(*id);
    }
    query.push(") ORDER BY t.name");
    let rows: Vec<(i64, String)> = query.build_query_as().fetch_all(&mut *conn).await?;
    for (article_id, name) in rows {
        tags.entry(article_id).or_default().push(name);
    }
    Ok(tags)
}

fn push_filter(query: &mut QueryBuilder<Any>, filter: &ArticleFilter) {
    query
        .push(" WHERE a.status = ")
        .push_bind(filter.status.as_str());
    if filter.status == ArticleStatus::Draft {
        match filter.drafts {
            DraftScope::None => {
                query.push(" AND 1 = 0");
            }
            DraftScope::OwnedBy(user_id) => {
                query.push(" AND a.author_id = ").push_bind(user_id);
            }
            DraftScope::All => {}
        }
    }
    if let Some(author) = &filter.author {
        query
            .push(" AND a.author_id = (SELECT id FROM users WHERE username = ")
            .push_bind(author.clone())
            .push(")");
    }
    if let Some(tag) = &filter.tag {
        query
            .push(
                " AND a.id IN (SELECT at.article_id FROM article_tags at \
                 JOIN tags t ON t.id = at.tag_id WHERE t.name = ",
            )
            .push_bind(tag.clone())
            .push(")");
    }
    if let Some(q) = &filter.q {
        query
            .push(" AND a.title_search LIKE ")
            .push_bind(like_pattern(&q.to_lowercase()))
            .push(" ESCAPE '!'");
    }
}

/// The SQL for a whitelisted sort; ids break ties so pages never overlap.
fn order_by(sort: ArticleSort) -> &'static str {
    match sort {
        ArticleSort::CreatedDesc => " ORDER BY a.created_at DESC, a.id DESC",
        ArticleSort::CreatedAsc => " ORDER BY a.created_at ASC, a.id ASC",
        ArticleSort::UpdatedDesc => " ORDER BY a.updated_at DESC, a.id DESC",
        ArticleSort::UpdatedAsc => " ORDER BY a.updated_at ASC, a.id ASC",
        ArticleSort::PublishedDesc => " ORDER BY a.published_at DESC, a.id DESC",
        ArticleSort::PublishedAsc => " ORDER BY a.published_at ASC, a.id ASC",
        ArticleSort::TitleAsc => " ORDER BY a.title ASC, a.id ASC",
        ArticleSort::TitleDesc => " ORDER BY a.title DESC, a.id DESC",
    }
}
