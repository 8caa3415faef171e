//! The write side: each write names the cache families it makes stale, as
//! typed values, and runs between their invalidations (see
//! [`Cache::around_write`]): once before it may commit, once after, which
//! carries the commit position the store reports.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

use crate::cache::{Bump, Cache, Family};
use crate::domain::{Article, ArticleContent, Comment, Role, User};
use crate::store::{Committed, Store, StoreError};

#[derive(Clone)]
pub struct Writer {
    store: Store,
    cache: Arc<Cache>,
    /// Article locks, striped by id: see [`Writer::lock_article`].
    article_locks: Arc<[Mutex<()>]>,
}

/// Stripes of article locks: enough that unrelated articles rarely share one.
const ARTICLE_LOCK_STRIPES: usize = 256;

/// Who writes an article: the caller.
pub struct Author<'a> {
    pub id: i64,
    pub username: &'a str,
}

impl Writer {
    pub fn new(store: Store, cache: Arc<Cache>) -> Self {
        Self {
            store,
            cache,
            article_locks: (0..ARTICLE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Serialises this instance's read-check-write cycles of one article.
    /// Writes are checked against the version they read, so without this,
    /// writers racing on a popular article keep invalidating each other's
    /// reads; with it they take turns, and only writes from other instances
    /// can still overtake one.
    pub async fn lock_article(&self, id: i64) -> MutexGuard<'_, ()> {
        let stripe = id.rem_euclid(ARTICLE_LOCK_STRIPES as i64) as usize;
        self.article_locks[stripe].lock().await
    }

    /// A new article; `derived_slug` as in [`Store::create_article`].
    pub async fn create_article(
        &self,
        author: Author<'_>,
        content: &ArticleContent,
        derived_slug: bool,
    ) -> Result<Article, StoreError> {
        let mut families = article_families(None, author.username, &content.tags);
        self.cache.invalidate(&families, Bump::Pending, None).await;
        let created = self
            .store
            .create_article(author.id, content, derived_slug)
            .await;
        // "No such article" may be cached for the new id.
        if let Ok(article) = &created {
            families.push(Family::Article(article.value.id));
        }
        self.finish(&families, &created).await;
        created.map(|c| c.value)
    }

    /// Replaces `current`'s content if it is still at its version.
    pub async fn update_article(
        &self,
        current: &Article,
        content: &ArticleContent,
    ) -> Result<Article, StoreError> {
        let tags = current.tags.iter().chain(&content.tags);
        let families = article_families(Some(current.id), &current.author.username, tags);
        self.cache
            .around_write(
                &families,
                self.store
                    .update_article(current.id, current.version, content),
            )
            .await
    }

    /// Deletes `current` (and its comments) if it is still at its version.
    pub async fn delete_article(&self, current: &Article) -> Result<(), StoreError> {
        let mut families =
            article_families(Some(current.id), &current.author.username, &current.tags);
        families.push(Family::Comments(current.id));
        self.cache
            .around_write(
                &families,
                self.store.delete_article(current.id, current.version),
            )
            .await
    }

    pub async fn create_comment(
        &self,
        article_id: i64,
        author_id: i64,
        body: &str,
    ) -> Result<Comment, StoreError> {
        let mut families = vec![Family::Comments(article_id)];
        self.cache.invalidate(&families, Bump::Pending, None).await;
        let created = self.store.create_comment(article_id, author_id, body).await;
        if let Ok(comment) = &created {
            families.push(Family::Comment(comment.value.id));
        }
        self.finish(&families, &created).await;
        created.map(|c| c.value)
    }

    pub async fn delete_comment(&self, comment: &Comment) -> Result<(), StoreError> {
        let families = [
            Family::Comments(comment.article_id),
            Family::Comment(comment.id),
        ];
        self.cache
            .around_write(&families, self.store.delete_comment(comment.id))
            .await
    }

    /// A new account ("no such user" may be cached for its id).
    pub async fn register_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let created = self
            .store
            .create_user(username, password_hash, role)
            .await?;
        self.cache
            .invalidate(
                &[Family::User(created.value.id)],
                Bump::Committed,
                created.position.as_ref(),
            )
            .await;
        Ok(created.value)
    }

    /// A new role, which every instance applies to the user's next
    /// request: authorization reads the role from the user's cached record.
    pub async fn set_role(&self, id: i64, role: Role) -> Result<User, StoreError> {
        self.cache
            .around_write(&[Family::User(id)], self.store.set_role(id, role))
            .await
    }

    /// Creates a user, or resets an existing one's password and role (see
    /// [`Store::reset_user`]): every instance then refuses the tokens of
    /// the old password on their next use. [`StoreError::Duplicate`] if
    /// the name was registered between the lookup and the insert.
    pub async fn upsert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let Some(id) = self.store.find_user_id(username).await? else {
            return self.register_user(username, password_hash, role).await;
        };
        self.cache
            .around_write(
                &[Family::User(id)],
                self.store.reset_user(id, password_hash, role),
            )
            .await
    }

    /// The invalidation after a write that learnt its families as it went.
    async fn finish<T>(&self, families: &[Family], written: &Result<Committed<T>, StoreError>) {
        let position = written.as_ref().ok().and_then(|c| c.position.as_ref());
        self.cache
            .after_write(families, Bump::after(written.is_ok()), position)
            .await;
    }
}

/// What an article write makes stale: the article, the lists of every
/// article, of its author and of every tag it had or has, and the tag list.
fn article_families<'a>(
    id: Option<i64>,
    author: &str,
    tags: impl IntoIterator<Item = &'a String>,
) -> Vec<Family> {
    let mut families = vec![Family::Articles, Family::Tags, Family::author(author)];
    families.extend(id.map(Family::Article));
    for tag in tags {
        let family = Family::Tag(tag.clone());
        if !families.contains(&family) {
            families.push(family);
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_article_write_names_every_list_it_was_or_is_in() {
        let (old, new) = (
            vec!["rust".to_owned()],
            vec!["rust".to_owned(), "web".to_owned()],
        );
        let families = article_families(Some(7), "Ada", old.iter().chain(&new));
        assert_eq!(
            families,
            [
                Family::Articles,
                Family::Tags,
                Family::Author("ada".into()),
                Family::Article(7),
                Family::Tag("rust".into()),
                Family::Tag("web".into()),
            ]
        );
    }
}
