use super::rows::CommentRow;
use super::{Committed, Store, StoreError, inserted_id};
use crate::domain::time::now;
use crate::domain::{Comment, PageRequest, Paged};

macro_rules! select_comments {
    () => {
        "SELECT c.id, c.article_id, c.author_id, u.username AS author_username, c.body, \
         c.created_at FROM comments c JOIN users u ON u.id = c.author_id"
    };
}

impl Store {
    /// An article's comments, oldest first; a cursor is the id of a
    /// comment of this article, and the page holds the ones after it.
    pub async fn list_comments(
        &self,
        article_id: i64,
        page: PageRequest,
    ) -> Result<Paged<Comment>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let after = match page.cursor() {
            None => 0,
            Some(&after) => {
                sqlx::query("SELECT 1 FROM comments WHERE id = ? AND article_id = ?")
                    .bind(after)
                    .bind(article_id)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(StoreError::UnknownCursor)?;
                after
            }
        };
        let sql = concat!(
            select_comments!(),
            " WHERE c.article_id = ? AND c.id > ? ORDER BY c.id LIMIT ? OFFSET ?"
        );
        let rows: Vec<CommentRow> = sqlx::query_as(sql)
            .bind(article_id)
            .bind(after)
            .bind(page.fetch_limit())
            .bind(i64::try_from(page.offset()).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE article_id = ?")
            .bind(article_id)
            .fetch_one(&mut *conn)
            .await?;
        let comments = rows.into_iter().map(Comment::from).collect();
        Ok(Paged::from_rows(
            comments,
            page,
            u64::try_from(total).unwrap_or(0),
            |comment| comment.id,
        ))
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
    ) -> Result<Committed<Comment>, StoreError> {
        let now = now().timestamp_millis();
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write_on(&mut conn).await?;
        let result = sqlx::query(
            "INSERT INTO comments (article_id, author_id, body, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(article_id)
        .bind(author_id)
        .bind(body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id = inserted_id(&mut tx, &result).await?;
        let row: CommentRow = sqlx::query_as(concat!(select_comments!(), " WHERE c.id = ?"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await.map_err(StoreError::at_commit)?;
        self.committed(&mut conn, row.into()).await
    }

    pub async fn delete_comment(&self, id: i64) -> Result<Committed<()>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        // One statement, committed as it runs.
        let result = sqlx::query("DELETE FROM comments WHERE id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::at_commit)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.committed(&mut conn, ()).await
    }
}
