//! Paging, sorting and filtering of lists, parsed once at the edge.

use super::article::ArticleStatus;
use super::search::SearchTerms;
use super::viewer::DraftScope;

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;
/// Highest page number: at most 100 pages of 100 (9,900 items) are skipped
/// by offset. Deeper pages go by cursor (`after`), which costs the same at
/// any depth.
pub const MAX_PAGE: u32 = 100;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PageStart<C> {
    /// A 1-based page number, for shallow pages.
    Number(u32),
    /// Just after the item with this cursor (an id, or a tag's name), at
    /// any depth.
    After(C),
}

/// A page of a list; `per_page` is already capped, a page number is at
/// most [`MAX_PAGE`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageRequest<C = i64> {
    pub start: PageStart<C>,
    pub per_page: u32,
}

/// Why a page cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    /// Page 0.
    Zero,
    /// A page number past [`MAX_PAGE`].
    TooDeep,
}

impl<C> PageRequest<C> {
    /// A numbered page; `per_page` is clamped to `1..=MAX_PER_PAGE`.
    pub fn number(page: u32, per_page: u32) -> Result<Self, PageError> {
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        if page == 0 {
            return Err(PageError::Zero);
        }
        if page > MAX_PAGE {
            return Err(PageError::TooDeep);
        }
        Ok(Self {
            start: PageStart::Number(page),
            per_page,
        })
    }

    /// The page after the item `cursor`; `per_page` is clamped.
    pub fn after(cursor: C, per_page: u32) -> Self {
        Self {
            start: PageStart::After(cursor),
            per_page: per_page.clamp(1, MAX_PER_PAGE),
        }
    }

    /// Rows to skip: 0 for a cursor page, which seeks instead.
    pub fn offset(&self) -> u64 {
        match self.start {
            PageStart::Number(page) => u64::from(page - 1) * u64::from(self.per_page),
            PageStart::After(_) => 0,
        }
    }

    /// The page number, if the page was asked for by number.
    pub fn page_number(&self) -> Option<u32> {
        match self.start {
            PageStart::Number(page) => Some(page),
            PageStart::After(_) => None,
        }
    }

    pub fn cursor(&self) -> Option<&C> {
        match &self.start {
            PageStart::Number(_) => None,
            PageStart::After(cursor) => Some(cursor),
        }
    }

    /// Rows to fetch: one more than a page, to learn whether another follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.per_page) + 1
    }
}

impl<C> Default for PageRequest<C> {
    fn default() -> Self {
        Self {
            start: PageStart::Number(1),
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

/// One page of results, the total they were taken from, and where the next
/// page starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T, C = i64> {
    pub items: Vec<T>,
    pub page: PageRequest<C>,
    pub total: u64,
    /// `total` stopped counting at a cap: at least that many match.
    pub total_capped: bool,
    pub next: Option<C>,
}

impl<T, C: Clone> Paged<T, C> {
    /// Cuts `rows` (fetched with [`PageRequest::fetch_limit`]) to a page and
    /// notes the cursor of its last item if more rows follow.
    pub fn from_rows(
        mut rows: Vec<T>,
        page: PageRequest<C>,
        total: u64,
        cursor_of: impl Fn(&T) -> C,
    ) -> Self {
        let more = rows.len() > page.per_page as usize;
        rows.truncate(page.per_page as usize);
        let next = rows.last().filter(|_| more).map(&cursor_of);
        Self {
            items: rows,
            page,
            total,
            total_capped: false,
            next,
        }
    }
}

impl<T, C> Paged<T, C> {
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

/// The column an [`ArticleSort`] orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    PublishedAt,
    Title,
}

impl ArticleSort {
    pub const ALL: [ArticleSort; 8] = [
        Self::CreatedDesc,
        Self::CreatedAsc,
        Self::UpdatedDesc,
        Self::UpdatedAsc,
        Self::PublishedDesc,
        Self::PublishedAsc,
        Self::TitleAsc,
        Self::TitleDesc,
    ];

    pub const ALLOWED: &'static str = "-created_at, created_at, -updated_at, updated_at, \
                                       -published_at, published_at, title, -title";

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sort| sort.as_param() == value)
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

    pub fn key(self) -> SortKey {
        match self {
            Self::CreatedDesc | Self::CreatedAsc => SortKey::CreatedAt,
            Self::UpdatedDesc | Self::UpdatedAsc => SortKey::UpdatedAt,
            Self::PublishedDesc | Self::PublishedAsc => SortKey::PublishedAt,
            Self::TitleAsc | Self::TitleDesc => SortKey::Title,
        }
    }

    pub fn descending(self) -> bool {
        matches!(
            self,
            Self::CreatedDesc | Self::UpdatedDesc | Self::PublishedDesc | Self::TitleDesc
        )
    }
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
        SortKey::PublishedAt,
        SortKey::Title,
    ];
}

/// A feed, named as readers name it: every article, an author's (by
/// canonical username), or a tag's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feed {
    All,
    Author(String),
    Tag(String),
}

impl Feed {
    /// An author's feed; usernames compare case-insensitively, so their
    /// feed is spelt in lower case.
    pub fn author(username: &str) -> Self {
        Feed::Author(username.to_ascii_lowercase())
    }
}

/// One order of a feed: its articles in one status, by one sort key
/// (ascending and descending lists walk the same order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeedOrder {
    pub feed: Feed,
    pub status: ArticleStatus,
    pub key: SortKey,
}

impl FeedOrder {
    /// The same feed and status, ordered by another key.
    pub fn with_key(&self, key: SortKey) -> Self {
        Self {
            key,
            ..self.clone()
        }
    }
}

/// How one article write moved things in the feeds, as the store saw it in
/// the write's transaction: what the cache needs to make stale exactly the
/// list pages whose bytes changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedChanges {
    /// Orders the article entered, left or moved in: their numbered pages
    /// shift (and, for entering and leaving, their totals change).
    pub orders: Vec<FeedOrder>,
    /// The articles next to each place the article entered or left in an
    /// order: a page by cursor changes only if it shows one of them.
    pub neighbours: Vec<(FeedOrder, i64)>,
}

/// A validated article list request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArticleFilter {
    /// A username, lower-cased.
    pub author: Option<String>,
    pub tag: Option<String>,
    pub status: ArticleStatus,
    /// Words the title must contain.
    pub q: Option<SearchTerms>,
    pub sort: ArticleSort,
    pub drafts: DraftScope,
}

impl ArticleFilter {
    /// The narrowest feed that holds every article this list can show.
    pub fn feed(&self) -> Feed {
        match (&self.tag, &self.author) {
            (Some(tag), _) => Feed::Tag(tag.clone()),
            (None, Some(author)) => Feed::author(author),
            (None, None) => Feed::All,
        }
    }

    /// The order this list walks.
    pub fn order(&self) -> FeedOrder {
        FeedOrder {
            feed: self.feed(),
            status: self.status,
            key: self.sort.key(),
        }
    }

    /// Whether the list is its feed's order as it stands, unfiltered: no
    /// search, no author within a tag, no one owner's drafts within a
    /// wider feed. Only then is a page's neighbourhood in the order exactly
    /// the page's own items.
    pub fn walks_whole_order(&self) -> bool {
        let narrowed_to_owner = self.status == ArticleStatus::Draft
            && matches!(self.drafts, DraftScope::OwnedBy(_))
            && self.author.is_none();
        self.q.is_none() && !(self.tag.is_some() && self.author.is_some()) && !narrowed_to_owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_zero_and_pages_past_the_offset_cap_are_refused() {
        assert_eq!(PageRequest::<i64>::number(0, 20), Err(PageError::Zero));
        let page = PageRequest::<i64>::number(3, 1000).unwrap();
        assert_eq!(page.per_page, MAX_PER_PAGE);
        assert_eq!(page.offset(), 200);
        assert_eq!(PageRequest::<i64>::number(1, 0).unwrap().per_page, 1);
        assert!(PageRequest::<i64>::number(100, 100).is_ok(), "offset 9,900");
        assert_eq!(PageRequest::<i64>::number(101, 1), Err(PageError::TooDeep));
        assert_eq!(
            PageRequest::<i64>::number(u32::MAX, 100),
            Err(PageError::TooDeep)
        );
    }

    #[test]
    fn a_cursor_page_seeks_instead_of_skipping() {
        let page = PageRequest::after(42_i64, 500);
        assert_eq!(page.offset(), 0);
        assert_eq!(page.cursor(), Some(&42));
        assert_eq!(page.page_number(), None);
        assert_eq!(page.fetch_limit(), 101);
    }

    #[test]
    fn rows_past_the_page_become_the_next_cursor() {
        let page = PageRequest::<i64>::number(1, 2).unwrap();
        let full = Paged::from_rows(vec![5, 4, 3], page.clone(), 9, |id| *id);
        assert_eq!(full.items, [5, 4]);
        assert_eq!(full.next, Some(4));
        let last = Paged::from_rows(vec![2, 1], page, 9, |id| *id);
        assert_eq!(last.next, None);
    }

    #[test]
    fn pages_round_up() {
        let paged = |total| Paged::<(), i64> {
            items: vec![],
            page: PageRequest::number(1, 20).unwrap(),
            total,
            total_capped: false,
            next: None,
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
