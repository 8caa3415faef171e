//! The read side: turns store results into finished responses ([`Entry`]:
//! encoded JSON plus its validators). Handlers serve entries as bytes; this is
//! the seam where the cache tiers sit.

mod entry;

use crate::domain::{ArticleFilter, ArticleStatus, PageRequest};
use crate::store::{Store, StoreError};
use crate::views::{ArticleView, CommentView, ListView, TagView};

pub use entry::Entry;

/// Path of the article collection, for list links.
pub const ARTICLES_PATH: &str = "/api/v1/articles";

#[derive(Debug, Clone)]
pub struct Reader {
    store: Store,
}

impl Reader {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// One article with its body; `None` if there is no such id.
    pub async fn article(&self, id: i64) -> Result<Option<Entry>, StoreError> {
        Ok(self.store.find_article(id).await?.map(Entry::article))
    }

    pub async fn articles(
        &self,
        filter: &ArticleFilter,
        page: PageRequest,
    ) -> Result<Entry, StoreError> {
        let paged = self.store.list_articles(filter, page).await?;
        let last_modified = paged.items.iter().map(|a| a.updated_at).max();
        let params = [
            ("author", filter.author.as_deref().unwrap_or("")),
            ("tag", filter.tag.as_deref().unwrap_or("")),
            (
                "status",
                if filter.status == ArticleStatus::Draft {
                    "draft"
                } else {
                    ""
                },
            ),
            ("q", filter.q.as_deref().unwrap_or("")),
            (
                "sort",
                if filter.sort == Default::default() {
                    ""
                } else {
                    filter.sort.as_param()
                },
            ),
        ];
        let list: ListView<ArticleView> = ListView::new(paged, ARTICLES_PATH, &params);
        Ok(Entry::json(&list, last_modified))
    }

    /// An article's comments; the caller checks the article is visible.
    pub async fn comments(&self, article_id: i64, page: PageRequest) -> Result<Entry, StoreError> {
        let paged = self.store.list_comments(article_id, page).await?;
        let last_modified = paged.items.iter().map(|c| c.created_at).max();
        let path = format!("{ARTICLES_PATH}/{article_id}/comments");
        let list: ListView<CommentView> = ListView::new(paged, &path, &[]);
        Ok(Entry::json(&list, last_modified))
    }

    pub async fn tags(&self, page: PageRequest) -> Result<Entry, StoreError> {
        let paged = self.store.list_tags(page).await?;
        let list: ListView<TagView> = ListView::new(paged, "/api/v1/tags", &[]);
        Ok(Entry::json(&list, None))
    }
}
