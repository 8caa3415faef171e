//! The read side: finished responses for the public reads, through the cache.
//! Each read names its cache key and how to build the entry on a miss.

use std::sync::Arc;

use crate::cache::{Cache, Cached, Entry, Key, surrogate_key};
use crate::domain::{ArticleFilter, ArticleStatus, DraftScope, PageRequest};
use crate::store::{Store, StoreError};
use crate::views::{ArticleView, CommentView, ListView, TagView, page_query};

/// Path of the article collection, for list links.
pub const ARTICLES_PATH: &str = "/api/v1/articles";

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
        let key = Key::article(id);
        self.cache
            .get_or_load(&key, || async {
                let article = self.store.find_article(id).await?;
                Ok(article.map(|a| Entry::article(a).with_tags(tags_of(&key, []))))
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
        let query = page_query(&borrowed, page.page, page.per_page);
        let scope = match (filter.status, filter.drafts) {
            (ArticleStatus::Published, _) => String::new(),
            (ArticleStatus::Draft, DraftScope::None) => "draft-none".into(),
            (ArticleStatus::Draft, DraftScope::OwnedBy(id)) => format!("draft-{id}"),
            (ArticleStatus::Draft, DraftScope::All) => "draft-all".into(),
        };
        let key = Key::articles(
            &query,
            &scope,
            filter.author.as_deref(),
            filter.tag.as_deref(),
        );
        self.cache
            .get_or_load(&key, || async {
                let paged = self.store.list_articles(filter, page).await?;
                let last_modified = paged.items.iter().map(|a| a.updated_at).max();
                let ids: Vec<String> = paged
                    .items
                    .iter()
                    .map(|a| format!("article-{}", a.id))
                    .collect();
                let list: ListView<ArticleView> = ListView::new(paged, ARTICLES_PATH, &borrowed);
                Ok(Some(
                    Entry::json(&list, last_modified).with_tags(tags_of(&key, ids)),
                ))
            })
            .await
    }

    /// An article's comments; the caller checks the article is visible.
    pub async fn comments(
        &self,
        article_id: i64,
        page: PageRequest,
    ) -> Result<Arc<Cached>, StoreError> {
        let key = Key::comments(article_id, page.page, page.per_page);
        self.cache
            .get_or_load(&key, || async {
                let paged = self.store.list_comments(article_id, page).await?;
                let last_modified = paged.items.iter().map(|c| c.created_at).max();
                let path = format!("{ARTICLES_PATH}/{article_id}/comments");
                let list: ListView<CommentView> = ListView::new(paged, &path, &[]);
                Ok(Some(
                    Entry::json(&list, last_modified).with_tags(tags_of(&key, [])),
                ))
            })
            .await
    }

    pub async fn tags(&self, page: PageRequest) -> Result<Arc<Cached>, StoreError> {
        let key = Key::tags(page.page, page.per_page);
        self.cache
            .get_or_load(&key, || async {
                let paged = self.store.list_tags(page).await?;
                let list: ListView<TagView> = ListView::new(paged, "/api/v1/tags", &[]);
                Ok(Some(Entry::json(&list, None).with_tags(tags_of(&key, []))))
            })
            .await
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
        params.push(("q", q.clone()));
    }
    if filter.sort != Default::default() {
        params.push(("sort", filter.sort.as_param().to_owned()));
    }
    params
}

/// Surrogate keys: the key's families, then any extra (the listed articles).
fn tags_of(key: &Key, extra: impl IntoIterator<Item = String>) -> String {
    let mut tags: Vec<String> = key.families.iter().map(|f| surrogate_key(f)).collect();
    tags.extend(extra);
    tags.join(" ")
}
