//! Comment writes, each whole: the article must be one the writer may see,
//! and only a comment's author, editors and admins may delete it.

use super::retry::retrying;
use super::{WriteError, Writer};
use crate::cache::Family;
use crate::domain::{Comment, Viewer};
use crate::store::{Committed, StoreError};

impl Writer {
    /// A comment by `author` on article `article_id`.
    pub async fn create_comment(
        &self,
        article_id: i64,
        author: Viewer,
        body: &str,
    ) -> Result<Comment, WriteError> {
        let Some(author_id) = author.id() else {
            return Err(WriteError::Forbidden("sign in to comment"));
        };
        retrying(false, || async {
            self.visible_article(article_id, author).await?;
            let before = [Family::Comments(article_id)];
            match self.store.create_comment(article_id, author_id, body).await {
                Ok(Committed {
                    value: comment,
                    position,
                }) => {
                    // "No such comment" may be cached for the new id.
                    let after = [before[0].clone(), Family::Comment(comment.id)];
                    self.committed(&after, position.as_ref()).await;
                    Ok(comment)
                }
                Err(err) => Err(self.failed(&before, err).await),
            }
        })
        .await
    }

    /// Deletes comment `id`, for `editor`.
    pub async fn delete_comment(&self, id: i64, editor: Viewer) -> Result<(), WriteError> {
        retrying(false, || async {
            let comment = self
                .store
                .find_comment(id)
                .await?
                .ok_or(WriteError::NotFound("no such comment"))?;
            self.visible_article(comment.article_id, editor)
                .await
                .map_err(|err| match err {
                    WriteError::NotFound(_) => WriteError::NotFound("no such comment"),
                    other => other,
                })?;
            if !editor.may_delete_comment(comment.author.id) {
                return Err(WriteError::Forbidden(
                    "only its author, editors and admins may delete a comment",
                ));
            }
            let families = [
                Family::Comments(comment.article_id),
                Family::Comment(comment.id),
            ];
            match self.store.delete_comment(comment.id).await {
                Ok(done) => {
                    self.committed(&families, done.position.as_ref()).await;
                    Ok(())
                }
                Err(StoreError::NotFound) => Err(WriteError::NotFound("no such comment")),
                Err(err) => Err(self.failed(&families, err).await),
            }
        })
        .await
    }

    /// 404 unless the article exists and `viewer` may see it.
    async fn visible_article(&self, id: i64, viewer: Viewer) -> Result<(), WriteError> {
        let cached = self.reader.article(id).await?;
        match cached.entry.as_ref() {
            Some(entry) if crate::reads::may_see(viewer, entry) => Ok(()),
            _ => Err(WriteError::NotFound("no such article")),
        }
    }
}
