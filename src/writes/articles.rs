//! Article writes, each whole: the write layer reads the article, checks
//! who may change it and the client's precondition, applies the change in
//! one transaction, makes stale what it changed, and makes it again if it
//! lost a race it did not choose (see `retry`).

use super::retry::retrying;
use super::stale::{self, Listed};
use super::{WriteError, Writer};
use crate::cache::entity_tag;
use crate::domain::{Article, ArticleContent, Viewer};
use crate::reads::article_entry;
use crate::store::{Committed, StoreError};

/// What a write requires of the article it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match`: the change applies to the article as it is when the
    /// write lands; if another write overtakes it between its read and its
    /// own, it is made again on the newer version.
    None,
    /// `If-Match` (its value): the article must still be one of these, by
    /// the strong ETag of any coding or by version number (`"3"` or `3`);
    /// `*` admits any. Otherwise the write answers 412.
    IfMatch(String),
}

impl Precondition {
    fn admits(&self, article: &Article) -> bool {
        let Precondition::IfMatch(value) = self else {
            return true;
        };
        if value.trim() == "*" {
            return true;
        }
        let version = article.version.to_string();
        let mut etag = None;
        value.split(',').map(str::trim).any(|tag| {
            if tag.starts_with("W/") {
                return false;
            }
            if tag.trim_matches('"') == version {
                return true;
            }
            // The ETag is the digest of the article's JSON: made only if a
            // tag is not a version number.
            let etag = etag.get_or_insert_with(|| article_entry(article.clone()).etag);
            entity_tag(tag) == *etag
        })
    }
}

impl Writer {
    /// A new article by `author` (the caller, whose username is
    /// `username`); `derived_slug` as in `Store::create_article`.
    pub async fn create_article(
        &self,
        author: Viewer,
        username: &str,
        content: &ArticleContent,
        derived_slug: bool,
    ) -> Result<Article, WriteError> {
        let Some(author_id) = author.id().filter(|_| author.may_write()) else {
            return Err(WriteError::Forbidden("readers may not write articles"));
        };
        let listed = Listed {
            status: content.status,
            tags: &content.tags,
        };
        retrying(false, || async {
            // "No such article" may be cached for the new id: its family is
            // named once the id is known.
            let before = stale::before_commit(None, username, None, Some(listed));
            let created = self
                .store
                .create_article(author_id, content, derived_slug)
                .await;
            match created {
                Ok(Committed {
                    value: (article, moved),
                    position,
                }) => {
                    let after = stale::after_commit(article.id, &before, &moved);
                    self.committed(&after, position.as_ref()).await;
                    Ok(article)
                }
                Err(err) => Err(self.failed(&before, err).await),
            }
        })
        .await
        .map_err(|err| on_slug(err, "another article has this slug"))
    }

    /// Changes article `id` as `change` says, for `editor`, if
    /// `precondition` holds.
    pub async fn edit_article(
        &self,
        id: i64,
        editor: Viewer,
        precondition: &Precondition,
        change: impl Fn(&Article) -> ArticleContent,
    ) -> Result<Article, WriteError> {
        let change = &change;
        self.article_write(id, editor, precondition, move |current| async move {
            let content = change(&current);
            let before = stale::before_commit(
                Some(id),
                &current.author.username,
                Some(listed(&current)),
                Some(Listed {
                    status: content.status,
                    tags: &content.tags,
                }),
            );
            match self
                .store
                .update_article(id, current.version, &content)
                .await
            {
                Ok(Committed {
                    value: (article, moved),
                    position,
                }) => {
                    let after = stale::after_commit(id, &before, &moved);
                    self.committed(&after, position.as_ref()).await;
                    Ok(article)
                }
                Err(err) => Err(self.failed(&before, err).await),
            }
        })
        .await
        .map_err(|err| on_slug(err, "another article has this slug"))
    }

    /// Deletes article `id` and its comments, for `editor`, if
    /// `precondition` holds.
    pub async fn delete_article(
        &self,
        id: i64,
        editor: Viewer,
        precondition: &Precondition,
    ) -> Result<(), WriteError> {
        self.article_write(id, editor, precondition, |current| async move {
            let mut before = stale::before_commit(
                Some(id),
                &current.author.username,
                Some(listed(&current)),
                None,
            );
            before.push(crate::cache::Family::Comments(id));
            match self.store.delete_article(id, current.version).await {
                Ok(Committed {
                    value: moved,
                    position,
                }) => {
                    let after = stale::after_commit(id, &before, &moved);
                    self.committed(&after, position.as_ref()).await;
                    Ok(())
                }
                Err(err) => Err(self.failed(&before, err).await),
            }
        })
        .await
    }

    /// The read-check-write of an existing article. Writes without a
    /// precondition take turns with this instance's other writers of the
    /// article, so they do not overtake each other between read and write;
    /// only another instance's write can, and then the write is made again
    /// on the newer version. With one, being overtaken is a 412.
    async fn article_write<T, F, Fut>(
        &self,
        id: i64,
        editor: Viewer,
        precondition: &Precondition,
        write: F,
    ) -> Result<T, WriteError>
    where
        F: Fn(Article) -> Fut,
        Fut: Future<Output = Result<T, WriteError>>,
    {
        let unconditional = *precondition == Precondition::None;
        let _turn = if unconditional {
            Some(self.lock_article(id).await)
        } else {
            None
        };
        retrying(unconditional, || async {
            let current = self
                .store
                .find_article(id)
                .await?
                .filter(|article| editor.may_see(article.status, article.author.id))
                .ok_or(WriteError::NotFound("no such article"))?;
            if !editor.may_edit_article(current.author.id) {
                return Err(WriteError::Forbidden(
                    "only its author, editors and admins may change an article",
                ));
            }
            if !precondition.admits(&current) {
                return Err(WriteError::PreconditionFailed);
            }
            write(current).await
        })
        .await
        .map_err(|err| match err {
            WriteError::Store(StoreError::Stale) if unconditional => WriteError::Conflict(
                "writes on other instances kept overtaking this one; nothing was written, retry",
            ),
            WriteError::Store(StoreError::Stale) => WriteError::PreconditionFailed,
            WriteError::Store(StoreError::NotFound) => WriteError::NotFound("no such article"),
            other => other,
        })
    }
}

fn listed(article: &Article) -> Listed<'_> {
    Listed {
        status: article.status,
        tags: &article.tags,
    }
}

/// A taken slug is the client's conflict.
fn on_slug(err: WriteError, message: &'static str) -> WriteError {
    match err {
        WriteError::Store(StoreError::Duplicate) => WriteError::Conflict(message),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::from_millis;
    use crate::domain::{ArticleStatus, Author};

    fn article(version: i64) -> Article {
        Article {
            id: 1,
            slug: "a".into(),
            title: "A".into(),
            summary: "s".into(),
            body: Some("b".into()),
            status: ArticleStatus::Published,
            tags: vec![],
            author: Author {
                id: 2,
                username: "ada".into(),
            },
            created_at: from_millis(0),
            updated_at: from_millis(0),
            published_at: None,
            version,
        }
    }

    #[test]
    fn if_match_takes_the_strong_etag_of_any_coding_or_the_version() {
        let current = article(3);
        let etag = article_entry(current.clone()).etag;
        let holds = |value: &str| Precondition::IfMatch(value.into()).admits(&current);
        assert!(Precondition::None.admits(&current));
        assert!(holds(&etag));
        assert!(holds(&format!("{}-br\"", etag.trim_end_matches('"'))));
        assert!(holds("\"3\"") && holds("3") && holds("*"));
        assert!(holds("\"x\", \"3\""));
        assert!(!holds(&format!("W/{etag}")));
        assert!(!holds("\"2\""));
    }
}
