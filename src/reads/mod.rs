//! The read side: finished responses for the public reads, through the cache.
//! Each read names its cache key and how to build the entry on a miss.

use std::sync::Arc;

use crate::cache::{Cache, Cached, Entry, Key};
use crate::domain::{ArticleFilter, ArticleStatus, DraftScope, PageRequest, Principal};
use crate::store::{Store, StoreError};
use crate::views::{ArticleView, CommentView, ListView, TagView, UserView, page_query};

/// Path of the article collection, for list links.
pub const ARTICLES_PATH: &str = "/api/v1/articles";
pub const TAGS_PATH: &str = "/api/v1/tags";

#[derive(Clone)]
pub struct Reader {
    store: Store,
    cache: Arc<Cache>,
}

impl Reader {
    pub fn new(store: Store, cache: Arc<Cache>) -> Self {
        Self { store, cache }
    }

    /// One article with its body; the entry is `None` if there is no such id.
    pub async fn article(&self, id: i64) -> Result<Arc<Cached>, StoreError> {
        let key = &Key::article(id);
        self.cache
            .get_or_load(key, |freshness| async move {
                let reads = self.store.reads(&freshness).await;
                let article = reads.find_article(id).await?;
                Ok(article.map(|a| Entry::article(a).with_tags(surrogate_keys(key, []))))
            })
            .await
    }

    pub async fn articles(
        &self,
        filter: &ArticleFilter,
        page: PageRequest,
    ) -> Result<Arc<Cached>, StoreError> {
        let params = list_params(filter);
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let query = page_query(&borrowed, &page.start, page.per_page);
        let scope = match (filter.status, filter.drafts) {
            (ArticleStatus::Published, _) => String::new(),
            (ArticleStatus::Draft, DraftScope::None) => "draft-none".into(),
            (ArticleStatus::Draft, DraftScope::OwnedBy(id)) => format!("draft-{id}"),
            (ArticleStatus::Draft, DraftScope::All) => "draft-all".into(),
        };
        let key = &Key::articles(
            &query,
            &scope,
            filter.author.as_deref(),
            filter.tag.as_deref(),
            page.cursor().copied(),
        );
        let (page, borrowed) = (&page, &borrowed);
        self.cache
            .get_or_load(key, |freshness| async move {
                let reads = self.store.reads(&freshness).await;
                let paged = reads.list_articles(filter, page.clone()).await?;
                let last_modified = paged.items.iter().map(|a| a.updated_at).max();
                let ids = paged.items.iter().map(|a| format!("article-{}", a.id));
                let tags = surrogate_keys(key, ids);
                let list: ListView<ArticleView> = ListView::new(paged, ARTICLES_PATH, borrowed);
                Ok(Some(Entry::json(&list, last_modified).with_tags(tags)))
            })
            .await
    }

    /// An article's comments; the caller checks the article is visible.
    pub async fn comments(
        &self,
        article_id: i64,
        page: PageRequest,
    ) -> Result<Arc<Cached>, StoreError> {
        let key = &Key::comments(article_id, &page_query(&[], &page.start, page.per_page));
        let page = &page;
        self.cache
            .get_or_load(key, |freshness| async move {
                let reads = self.store.reads(&freshness).await;
                let paged = reads.list_comments(article_id, page.clone()).await?;
                let last_modified = paged.items.iter().map(|c| c.created_at).max();
                let path = format!("{ARTICLES_PATH}/{article_id}/comments");
                let list: ListView<CommentView> = ListView::new(paged, &path, &[]);
                Ok(Some(
                    Entry::json(&list, last_modified).with_tags(surrogate_keys(key, [])),
                ))
            })
            .await
    }

    /// One comment; the caller checks its article is visible.
    pub async fn comment(&self, id: i64) -> Result<Arc<Cached>, StoreError> {
        let key = &Key::comment(id);
        self.cache
            .get_or_load(key, |freshness| async move {
                let reads = self.store.reads(&freshness).await;
                let Some(comment) = reads.find_comment(id).await? else {
                    return Ok(None);
                };
                let (article_id, created_at) = (comment.article_id, comment.created_at);
                let article = format!("article-{article_id}");
                let entry = Entry::json(&CommentView::from(comment), Some(created_at))
                    .of_article(article_id)
                    .with_tags(surrogate_keys(key, [article]));
                Ok(Some(entry))
            })
            .await
    }

    pub async fn tags(&self, page: PageRequest<String>) -> Result<Arc<Cached>, StoreError> {
        let key = &Key::tags(&page_query(&[], &page.start, page.per_page));
        let page = &page;
        self.cache
            .get_or_load(key, |freshness| async move {
                let reads = self.store.reads(&freshness).await;
                let paged = reads.list_tags(page.clone()).await?;
                let list: ListView<TagView> = ListView::new(paged, TAGS_PATH, &[]);
                Ok(Some(
                    Entry::json(&list, None).with_tags(surrogate_keys(key, [])),
                ))
            })
            .await
    }

    /// A user's public profile.
    pub async fn user(&self, id: i64) -> Result<Arc<Cached>, StoreError> {
        let key = &Key::user(id);
        self.cache
            .get_or_load(key, |freshness| async move {
                let reads = self.store.reads(&freshness).await;
                let user = reads.find_user(id).await?;
                Ok(user.map(|user| {
                    Entry::json(&UserView::from(user), None).with_tags(surrogate_keys(key, []))
                }))
            })
            .await
    }

    /// A user as authorization sees them now; `None` if there is no such
    /// user. Cached like a response, so a warm authenticated request costs
    /// no database round trip, and made stale everywhere by role changes
    /// and password resets (their writes bump `Family::User`).
    pub async fn principal(&self, id: i64) -> Result<Option<Principal>, StoreError> {
        let cached = self
            .cache
            // Authorization must be current: the primary, whatever the
            // position.
            .get_or_load(&Key::principal(id), |_| async move {
                let principal = self.store.primary_reads().find_principal(id).await?;
                Ok(principal.map(|principal| Entry::json(&principal, None)))
            })
            .await?;
        let Some(entry) = cached.entry.as_ref() else {
            return Ok(None);
        };
        match serde_json::from_slice(&entry.body) {
            Ok(principal) => Ok(Some(principal)),
            // Written by a build with another shape of record: read it afresh.
            Err(_) => self.store.find_principal(id).await,
        }
    }
}

/// The list's filters as canonical query parameters (defaults left out).
fn list_params(filter: &ArticleFilter) -> Vec<(&'static str, String)> {
    let mut params = Vec::with_capacity(5);
    if let Some(author) = &filter.author {
        params.push(("author", author.clone()));
    }
    if let Some(tag) = &filter.tag {
        params.push(("tag", tag.clone()));
    }
    if filter.status == ArticleStatus::Draft {
        params.push(("status", "draft".to_owned()));
    }
    if let Some(q) = &filter.q {
        params.push(("q", q.to_query().to_owned()));
    }
    if filter.sort != Default::default() {
        params.push(("sort", filter.sort.as_param().to_owned()));
    }
    params
}

/// Surrogate keys: the key's families, then any extra (the listed articles).
fn surrogate_keys(key: &Key, extra: impl IntoIterator<Item = String>) -> String {
    let mut tags: Vec<String> = key.families.iter().map(|f| f.surrogate_key()).collect();
    for tag in extra {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.join(" ")
}
