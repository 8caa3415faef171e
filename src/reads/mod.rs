//! The read side: finished responses for the public reads, through the cache.
//! Each read names its cache key and how to build the entry on a miss.
//!
//! What a list page depends on, locally (see `families`): its numbered
//! pages on the order they number (any article entering, leaving or moving
//! in it shifts them, and changes their total); a page by cursor on the
//! article it seeks from and, when it walks its feed's order whole, only
//! on the articles it shows: something entering or leaving the order next
//! to one of them, or one of them changing. Every page also depends on
//! each article it shows. Shared (in Redis), list pages depend on their
//! feeds as a whole.

pub mod families;

use std::sync::Arc;

use crate::cache::{Cache, Cached, Entry, Families, Family, Key, Loaded};
use crate::domain::{
    Article, ArticleFilter, ArticleStatus, DraftScope, PageRequest, Principal, SortKey, Viewer,
};
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
                let article = self.store.reads(&freshness).await.find_article(id).await?;
                let entry = article.map(|a| article_entry(a).with_tags(surrogate_keys(key, [])));
                Ok(Loaded::from(entry))
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
        let order = filter.order();
        let by_neighbours = page.cursor().is_some() && filter.walks_whole_order();
        let mut local = Families::new();
        if !by_neighbours {
            local.push(families::order(&order));
        }
        if filter.q.is_some() {
            // A search also follows its titles.
            local.push(families::order(&order.with_key(SortKey::Title)));
        }
        if let Some(&after) = page.cursor() {
            local.push(families::anchor(after, order.key));
        }
        let key = &Key::articles(
            &query,
            &scope,
            filter.author.as_deref(),
            filter.tag.as_deref(),
            page.cursor().copied(),
            local,
        );
        let (page, order, borrowed) = (&page, &order, &borrowed);
        self.cache
            .get_or_load(key, |freshness| async move {
                let paged = self
                    .store
                    .reads(&freshness)
                    .await
                    .list_articles(filter, page.clone())
                    .await?;
                let mut shown: Vec<Family> = Vec::with_capacity(2 * paged.items.len() + 1);
                for article in &paged.items {
                    shown.push(Family::Article(article.id));
                    if by_neighbours {
                        shown.push(families::gap(order, article.id));
                    }
                }
                if by_neighbours && paged.items.is_empty() {
                    // Past the end: whatever enters the order may land here.
                    shown.push(families::order(order));
                }
                let last_modified = paged.items.iter().map(|a| a.updated_at).max();
                let ids = paged.items.iter().map(|a| format!("article-{}", a.id));
                let tags = surrogate_keys(key, ids);
                let list: ListView<ArticleView> = ListView::new(paged, ARTICLES_PATH, borrowed);
                Ok(Loaded {
                    entry: Some(Entry::json(&list, last_modified).with_tags(tags)),
                    families: shown,
                })
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
                let paged = self
                    .store
                    .reads(&freshness)
                    .await
                    .list_comments(article_id, page.clone())
                    .await?;
                let last_modified = paged.items.iter().map(|c| c.created_at).max();
                let path = format!("{ARTICLES_PATH}/{article_id}/comments");
                let list: ListView<CommentView> = ListView::new(paged, &path, &[]);
                let entry = Entry::json(&list, last_modified).with_tags(surrogate_keys(key, []));
                Ok(Loaded::from(Some(entry)))
            })
            .await
    }

    /// One comment; the caller checks its article is visible.
    pub async fn comment(&self, id: i64) -> Result<Arc<Cached>, StoreError> {
        let key = &Key::comment(id);
        self.cache
            .get_or_load(key, |freshness| async move {
                let Some(comment) = self.store.reads(&freshness).await.find_comment(id).await?
                else {
                    return Ok(Loaded::default());
                };
                let (article_id, created_at) = (comment.article_id, comment.created_at);
                let article = format!("article-{article_id}");
                let entry = Entry::json(&CommentView::from(comment), Some(created_at))
                    .of_article(article_id)
                    .with_tags(surrogate_keys(key, [article]));
                Ok(Loaded::from(Some(entry)))
            })
            .await
    }

    pub async fn tags(&self, page: PageRequest<String>) -> Result<Arc<Cached>, StoreError> {
        let key = &Key::tags(&page_query(&[], &page.start, page.per_page));
        let page = &page;
        self.cache
            .get_or_load(key, |freshness| async move {
                let paged = self
                    .store
                    .reads(&freshness)
                    .await
                    .list_tags(page.clone())
                    .await?;
                let list: ListView<TagView> = ListView::new(paged, TAGS_PATH, &[]);
                let entry = Entry::json(&list, None).with_tags(surrogate_keys(key, []));
                Ok(Loaded::from(Some(entry)))
            })
            .await
    }

    /// A user's public profile.
    pub async fn user(&self, id: i64) -> Result<Arc<Cached>, StoreError> {
        let key = &Key::user(id);
        self.cache
            .get_or_load(key, |freshness| async move {
                let user = self.store.reads(&freshness).await.find_user(id).await?;
                Ok(Loaded::from(user.map(|user| {
                    Entry::json(&UserView::from(user), None).with_tags(surrogate_keys(key, []))
                })))
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
                Ok(Loaded::from(
                    principal.map(|principal| Entry::json(&principal, None)),
                ))
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

/// Whether `viewer` may see what an entry holds: a draft article (and the
/// comments under it) only if they may see its author's drafts.
pub fn may_see(viewer: Viewer, entry: &Entry) -> bool {
    entry
        .draft_of
        .is_none_or(|author| viewer.may_see(ArticleStatus::Draft, author))
}

/// An article's response: its JSON, validators and whose draft it is.
pub fn article_entry(article: Article) -> Entry {
    let draft_of = (article.status == ArticleStatus::Draft).then_some(article.author.id);
    let updated_at = article.updated_at;
    Entry::json(&ArticleView::from(article), Some(updated_at)).draft_by(draft_of)
}

/// Surrogate keys: the key's families, then any extra (the listed articles).
fn surrogate_keys(key: &Key, extra: impl IntoIterator<Item = String>) -> String {
    let mut tags: Vec<String> = key
        .shared
        .iter()
        .filter_map(Family::surrogate_key)
        .collect();
    for tag in extra {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.join(" ")
}
