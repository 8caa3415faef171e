//! Reads that a replica may serve: the caller names what they must see
//! ([`Freshness`]), the store hands out a [`Reads`] handle on the server
//! chosen for them (see `replicas`), and the handle offers reads only.

use std::sync::Arc;

use super::replicas::{ReplicaHealth, Replicas};
use super::{Position, Store, StoreError};
use crate::domain::{
    Article, ArticleFilter, Comment, PageRequest, Paged, Principal, TagCount, User,
};
use crate::labels::ReadTarget;

/// What a read must see, as its caller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Every write committed up to this position (empty: none in
    /// particular); a replica that has applied it may serve.
    AtLeast(Position),
    /// Every committed write, whichever: only the primary can tell (the
    /// caller cannot know what was written).
    Latest,
}

/// A handle for reads that a replica may serve, on the server chosen for
/// them when it was made; see [`Store::replica_reads`]. It offers reads
/// only.
#[derive(Clone)]
pub struct Reads {
    primary: Store,
    /// The replicas and the one chosen (to take it out if it fails).
    replica: Option<(Arc<Replicas>, usize)>,
    target: ReadTarget,
}

impl Store {
    /// A handle for reads that may run on a replica: one in rotation that
    /// has applied `at_least` (waiting up to `database.replica_wait_ms`),
    /// else the primary. `None` asks for no write in particular (the
    /// replica must still have applied the schema this instance migrated).
    pub async fn replica_reads(&self, at_least: Option<&Position>) -> Reads {
        let replicas = &self.replicas;
        if replicas.is_empty() {
            return self.primary_reads();
        }
        let Some(index) = replicas.ready_replica(at_least).await else {
            return Reads {
                primary: self.clone(),
                replica: None,
                target: ReadTarget::PrimaryFallback,
            };
        };
        Reads {
            primary: self.clone(),
            replica: Some((replicas.clone(), index)),
            target: ReadTarget::Replica,
        }
    }

    /// A handle for reads that must see what `freshness` says.
    pub async fn reads(&self, freshness: &Freshness) -> Reads {
        match freshness {
            Freshness::AtLeast(position) => self.replica_reads(Some(position)).await,
            Freshness::Latest if self.replicas.is_empty() => self.primary_reads(),
            Freshness::Latest => Reads {
                primary: self.clone(),
                replica: None,
                target: ReadTarget::PrimaryFallback,
            },
        }
    }

    /// A handle for reads that must see every committed write: the primary.
    pub fn primary_reads(&self) -> Reads {
        Reads {
            primary: self.clone(),
            replica: None,
            target: ReadTarget::Primary,
        }
    }
}

impl Reads {
    /// Where this handle's reads run (the primary too, after a replica
    /// failed one).
    pub fn target(&self) -> ReadTarget {
        self.target
    }

    /// Runs `read` on the chosen server; a replica that fails it (rather
    /// than answering "not found" or the like) is taken out of rotation and
    /// the read runs on the primary.
    async fn run<T, F, Fut>(&self, read: F) -> Result<T, StoreError>
    where
        F: Fn(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        if let Some((replicas, index)) = &self.replica {
            let server = &replicas.servers[*index];
            match read(server.store.clone()).await {
                Err(err) if err.is_server_fault() => {
                    tracing::warn!(replica = %server.name, error = %err, "replica read failed");
                    if matches!(err, StoreError::Unavailable(_)) {
                        server.set_health(ReplicaHealth::Down);
                    }
                    crate::metrics::db_read(ReadTarget::PrimaryFallback);
                }
                answer => {
                    crate::metrics::db_read(ReadTarget::Replica);
                    return answer;
                }
            }
        } else {
            crate::metrics::db_read(self.target);
        }
        let primary = self.primary.for_fills();
        match read(primary.clone()).await {
            // A pooled connection that broke while idle: its siblings are
            // checked before use now, so one more try finds a live one.
            Err(err) if err.is_broken_connection() => read(primary).await,
            answer => answer,
        }
    }

    pub async fn find_article(&self, id: i64) -> Result<Option<Article>, StoreError> {
        self.run(|store| async move { store.find_article(id).await })
            .await
    }

    pub async fn list_articles(
        &self,
        filter: &ArticleFilter,
        page: PageRequest,
    ) -> Result<Paged<Article>, StoreError> {
        self.run(|store| {
            let page = page.clone();
            async move { store.list_articles(filter, page).await }
        })
        .await
    }

    pub async fn list_comments(
        &self,
        article_id: i64,
        page: PageRequest,
    ) -> Result<Paged<Comment>, StoreError> {
        self.run(|store| {
            let page = page.clone();
            async move { store.list_comments(article_id, page).await }
        })
        .await
    }

    pub async fn find_comment(&self, id: i64) -> Result<Option<Comment>, StoreError> {
        self.run(|store| async move { store.find_comment(id).await })
            .await
    }

    pub async fn list_tags(
        &self,
        page: PageRequest<String>,
    ) -> Result<Paged<TagCount, String>, StoreError> {
        self.run(|store| {
            let page = page.clone();
            async move { store.list_tags(page).await }
        })
        .await
    }

    pub async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.run(|store| async move { store.find_user(id).await })
            .await
    }

    pub async fn find_principal(&self, id: i64) -> Result<Option<Principal>, StoreError> {
        self.run(|store| async move { store.find_principal(id).await })
            .await
    }
}
