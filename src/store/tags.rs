use sqlx::{Any, QueryBuilder};

use super::rows::TagCountRow;
use super::{Store, StoreError};
use crate::domain::{PageRequest, Paged, TagCount};

/// Published counts of tag feeds (kind 2), from the kept feed sizes.
macro_rules! tag_counts {
    () => {
        " FROM feed_counts WHERE feed_kind = 2 AND status = 'published' AND articles > 0"
    };
}

impl Store {
    /// Tags on published articles, most used first, then by name; a cursor
    /// is the name of the tag a page follows.
    pub async fn list_tags(
        &self,
        page: PageRequest<String>,
    ) -> Result<Paged<TagCount, String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut query = QueryBuilder::<Any>::new("SELECT label AS name, articles");
        query.push(tag_counts!());
        if let Some(after) = page.cursor() {
            let count: Option<i64> = sqlx::query_scalar(
                "SELECT c.articles FROM tags t JOIN feed_counts c \
                 ON c.feed_kind = 2 AND c.feed_id = t.id AND c.status = 'published' \
                 WHERE t.name = ? AND c.articles > 0",
            )
            .bind(after)
            .fetch_optional(&mut *conn)
            .await?;
            let count = count.ok_or(StoreError::UnknownCursor)?;
            query
                .push(" AND articles <= ")
                .push_bind(count)
                .push(" AND (articles < ")
                .push_bind(count)
                .push(" OR label > ")
                .push_bind(after.clone())
                .push(")");
        }
        query
            .push(" ORDER BY articles DESC, label LIMIT ")
            .push_bind(page.fetch_limit())
            .push(" OFFSET ")
            .push_bind(i64::try_from(page.offset()).unwrap_or(i64::MAX));
        let rows: Vec<TagCountRow> = query.build_query_as().fetch_all(&mut *conn).await?;
        let total: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*)", tag_counts!()))
            .fetch_one(&mut *conn)
            .await?;
        let rows = rows.into_iter().map(TagCount::from).collect();
        Ok(Paged::from_rows(
            rows,
            page,
            u64::try_from(total).unwrap_or(0),
            |tag| tag.name.clone(),
        ))
    }
}
