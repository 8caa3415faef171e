//! The nouns of the service, free of HTTP and SQL: what an article, a user or
//! a page of results is, and the rules that hold for them everywhere.

mod article;
mod comment;
mod listing;
mod search;
mod tag;
pub mod time;
mod user;
mod viewer;

pub use article::{Article, ArticleContent, ArticleStatus, Author, slugify, summarize};
pub use comment::Comment;
pub use listing::{
    ArticleFilter, ArticleSort, Feed, FeedChanges, FeedOrder, MAX_PAGE, PageError, PageRequest,
    PageStart, Paged, SortKey,
};
pub use search::{SearchTerms, words};
pub use tag::{MAX_TAGS, TagCount, normalize_tag, normalize_tags};
pub use user::{Principal, Role, User};
pub use viewer::{DraftScope, Viewer};
