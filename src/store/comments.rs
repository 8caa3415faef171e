use super::rows::CommentRow;
use super::{Store, StoreError, inserted_id};
use crate::domain::time::now;
use crate::domain::{Comment, PageRequest, Paged};

macro_rules! select_comments {
    () => {
        "SELECT c.id, c.article_id, c.author_id, u.username AS author_username, c.body, \
         c.created_at FROM comments c JOIN users u ON u.id = c.author_id"
    };
}

impl Store {
    /// An article's comments, oldest first.
    pub async fn list_comments(
        &self,
        article_id: i64,
        page: PageRequest,
    ) -> Result<Paged<Comment>, StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE article_id = ?")
            .bind(article_id)
            .fetch_one(&self.pool)
            .await?;
        let sql = concat!(
            select_comments!(),
            " WHERE c.article_id = ? ORDER BY c.id LIMIT ? OFFSET ?"
        );
        let rows: Vec<CommentRow> = sqlx::query_as(sql)
            .bind(article_id)
            .bind(i64::from(page.per_page))
            .bind(i64::try_from(page.offset()).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        Ok(Paged {
            items: rows.into_iter().map(Comment::from).collect(),
            page,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    pub async fn find_comment(&self, id: i64) -> Result<Option<Comment>, StoreError> {
        let sql = concat!(select_comments!(), " WHERE c.id = ?");
        let row: Option<CommentRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Comment::from))
    }

    pub async fn create_comment(
        &self,
        article_id: i64,
        author_id: i64,
        body: &str,
    ) -> Result<Comment, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let result = sqlx::query(
            "INSERT INTO comments (article_id, author_id, body, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(article_id)
        .bind(author_id)
        .bind(body)
        .bind(now().timestamp_millis())
        .execute(&mut *conn)
        .await?;
        let id = inserted_id(&mut conn, &result).await?;
        drop(conn);
        self.find_comment(id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn delete_comment(&self, id: i64) -> Result<(), StoreError> {
        let result = sqlx::query("DELETE FROM comments WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
