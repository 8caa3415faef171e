//! Paging, sorting and filtering of lists, parsed once at the edge.

use super::article::ArticleStatus;

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;

/// A 1-based page; `per_page` is already capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageRequest {
    /// `None` for page 0. `per_page` is clamped to `1..=MAX_PER_PAGE`.
    pub fn new(page: u32, per_page: u32) -> Option<Self> {
        (page >= 1).then(|| Self {
            page,
            per_page: per_page.clamp(1, MAX_PER_PAGE),
        })
    }

    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per_page)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

/// One page of results and the total they were taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub page: PageRequest,
    pub total: u64,
}

impl<T> Paged<T> {
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(u64::from(self.page.per_page))
    }
}

/// The whitelist of article orderings; newest first by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ArticleSort {
    #[default]
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
    PublishedDesc,
    PublishedAsc,
    TitleAsc,
    TitleDesc,
}

impl ArticleSort {
    pub const ALLOWED: &'static str = "-created_at, created_at, -updated_at, updated_at, \
                                       -published_at, published_at, title, -title";

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "-created_at" => Self::CreatedDesc,
            "created_at" => Self::CreatedAsc,
            "-updated_at" => Self::UpdatedDesc,
            "updated_at" => Self::UpdatedAsc,
            "-published_at" => Self::PublishedDesc,
            "published_at" => Self::PublishedAsc,
            "title" => Self::TitleAsc,
            "-title" => Self::TitleDesc,
            _ => return None,
        })
    }

    pub fn as_param(self) -> &'static str {
        match self {
            Self::CreatedDesc => "-created_at",
            Self::CreatedAsc => "created_at",
            Self::UpdatedDesc => "-updated_at",
            Self::UpdatedAsc => "updated_at",
            Self::PublishedDesc => "-published_at",
            Self::PublishedAsc => "published_at",
            Self::TitleAsc => "title",
            Self::TitleDesc => "-title",
        }
    }
}

/// Which drafts a reader may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DraftScope {
    None,
    OwnedBy(i64),
    All,
}

/// A validated article list request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArticleFilter {
    pub author: Option<String>,
    pub tag: Option<String>,
    pub status: ArticleStatus,
    /// Case-insensitive substring of the title.
    pub q: Option<String>,
    pub sort: ArticleSort,
    pub drafts: DraftScope,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_zero_is_refused_and_per_page_is_capped() {
        assert_eq!(PageRequest::new(0, 20), None);
        let page = PageRequest::new(3, 1000).unwrap();
        assert_eq!(page.per_page, MAX_PER_PAGE);
        assert_eq!(page.offset(), 200);
        assert_eq!(PageRequest::new(1, 0).unwrap().per_page, 1);
    }

    #[test]
    fn pages_round_up() {
        let paged = |total| Paged::<()> {
            items: vec![],
            page: PageRequest::new(1, 20).unwrap(),
            total,
        };
        assert_eq!(paged(0).pages(), 0);
        assert_eq!(paged(20).pages(), 1);
        assert_eq!(paged(21).pages(), 2);
    }

    #[test]
    fn every_sort_round_trips() {
        for sort in ArticleSort::ALLOWED.split(", ") {
            assert_eq!(ArticleSort::parse(sort).unwrap().as_param(), sort);
        }
        assert_eq!(ArticleSort::parse("password"), None);
    }
}
