//! The write side. Each write is one call from its handler that does the
//! whole of it: reads what it changes, checks who may make it and the
//! client's precondition, applies it in one transaction, and makes stale
//! exactly the cached responses it changed, as typed families (see
//! `stale`), once it has committed and before it answers; the CDN is asked
//! to purge only what a committed write changed. Nothing is made stale
//! before the commit: until then the cached state is the committed one. A write
//! that loses a race it did not choose is made again under one policy
//! (`retry`). Articles (`articles`), comments (`comments`), users (`users`)
//! and sessions, the token endpoint's writes (`tokens`).

mod articles;
mod comments;
mod retry;
mod stale;
mod tokens;
mod users;

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

pub use articles::Precondition;

use crate::cache::{Cache, Family};
use crate::error::ApiError;
use crate::reads::Reader;
use crate::store::{Committed, Position, Store, StoreError};

pub use tokens::{IssuedTokens, PasswordGrant, TokenGrantError};
pub use users::UserWriteError;

#[derive(Clone)]
pub struct Writer {
    store: Store,
    cache: Arc<Cache>,
    reader: Reader,
    /// Article locks, striped by id: see [`Writer::lock_article`].
    article_locks: Arc<[Mutex<()>]>,
}

/// Stripes of article locks: enough that unrelated articles rarely share one.
const ARTICLE_LOCK_STRIPES: usize = 256;

/// Why a write was refused or failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// 404: no such thing, or not one the writer may see.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// 403: the writer may see it but not change it.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 412: the client's precondition (`If-Match`) does not hold.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 409: the change clashes with the current state.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// What the store said (unavailable, contended past every retry...).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::NotFound(what) => ApiError::NotFound(what.into()),
            WriteError::Forbidden(why) => ApiError::Forbidden(why.into()),
            WriteError::PreconditionFailed => ApiError::PreconditionFailed,
            WriteError::Conflict(why) => ApiError::Conflict(why.into()),
            WriteError::Store(err) => err.into(),
        }
    }
}

impl Writer {
    pub fn new(store: Store, cache: Arc<Cache>, reader: Reader) -> Self {
        Self {
            store,
            cache,
            reader,
            article_locks: (0..ARTICLE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Serialises this instance's read-check-write cycles of one article.
    /// Writes are checked against the version they read, so without this,
    /// writers racing on a popular article keep invalidating each other's
    /// reads; with it they take turns, and only writes from other instances
    /// can still overtake one.
    async fn lock_article(&self, id: i64) -> MutexGuard<'_, ()> {
        let stripe = id.rem_euclid(ARTICLE_LOCK_STRIPES as i64) as usize;
        self.article_locks[stripe].lock().await
    }

    /// After a write committed at `position`: what it changed is stale
    /// everywhere (and fills wait for the position), and the CDN is asked
    /// to purge it.
    async fn committed(&self, families: &[Family], position: Option<&Position>) {
        self.cache.invalidate_at(families, position).await;
        self.cache.purge(families);
    }

    /// After a write failed. A write the database rolled back changed
    /// nothing. One whose commit is unknown (the connection went while it
    /// committed) is taken as made: what it named is stale at the primary's
    /// position, if that can be read, and since what it moved in its feeds
    /// cannot be told, so is everything else. Hands the error back.
    async fn failed(&self, families: &[Family], err: StoreError) -> WriteError {
        self.after_failure(families, &err).await;
        err.into()
    }

    async fn after_failure(&self, families: &[Family], err: &StoreError) {
        if matches!(err, StoreError::CommitUnknown(_)) {
            let position = self.store.primary_position().await.ok().flatten();
            self.cache.invalidate_at(families, position.as_ref()).await;
            self.cache.invalidate_all().await;
            self.cache.purge(families);
        }
    }

    /// Runs a prepared store write that changes `families`, and makes them
    /// stale once it committed (or may have).
    async fn around<T>(
        &self,
        families: &[Family],
        write: impl Future<Output = Result<Committed<T>, StoreError>>,
    ) -> Result<T, StoreError> {
        match write.await {
            Ok(done) => {
                self.committed(families, done.position.as_ref()).await;
                Ok(done.value)
            }
            Err(err) => {
                self.after_failure(families, &err).await;
                Err(err)
            }
        }
    }
}
