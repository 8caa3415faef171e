use super::rows::TagCountRow;
use super::{Store, StoreError};
use crate::domain::{PageRequest, Paged, TagCount};

impl Store {
    /// Tags on published articles, most used first.
    pub async fn list_tags(&self, page: PageRequest) -> Result<Paged<TagCount>, StoreError> {
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT at.tag_id) FROM article_tags at \
             JOIN articles a ON a.id = at.article_id WHERE a.status = 'published'",
        )
        .fetch_one(&self.pool)
        .await?;
        let rows: Vec<TagCountRow> = sqlx::query_as(
            "SELECT t.name, COUNT(*) AS articles FROM tags t \
             JOIN article_tags at ON at.tag_id = t.id \
             JOIN articles a ON a.id = at.article_id AND a.status = 'published' \
             GROUP BY t.id, t.name ORDER BY articles DESC, t.name LIMIT ? OFFSET ?",
        )
        .bind(i64::from(page.per_page))
        .bind(i64::try_from(page.offset()).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(Paged {
            items: rows.into_iter().map(TagCount::from).collect(),
            page,
            total: u64::try_from(total).unwrap_or(0),
        })
    }
}
