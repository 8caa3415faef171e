//! The JSON the API speaks: snake_case, ISO 8601 UTC times, and one list shape.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::time::{Timestamp, serde_iso8601};
use std::fmt::Display;

use crate::domain::{
    Article, ArticleStatus, Author, Comment, PageStart, Paged, Role, TagCount, User,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorView {
    pub id: i64,
    pub username: String,
}

impl From<Author> for AuthorView {
    fn from(author: Author) -> Self {
        Self {
            id: author.id,
            username: author.username,
        }
    }
}

/// An article. Lists leave `body` out; fetch the article for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleView {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub status: ArticleStatus,
    pub tags: Vec<String>,
    pub author: AuthorView,
    #[serde(with = "serde_iso8601")]
    #[schema(value_type = String, format = DateTime, example = "2024-05-20T12:34:56Z")]
    pub created_at: Timestamp,
    #[serde(with = "serde_iso8601")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[serde(serialize_with = "serde_iso8601::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<Timestamp>,
    /// Increases with every change; send it in `If-Match` to update safely.
    pub version: i64,
}

impl From<Article> for ArticleView {
    fn from(article: Article) -> Self {
        Self {
            id: article.id,
            slug: article.slug,
            title: article.title,
            summary: article.summary,
            body: article.body,
            status: article.status,
            tags: article.tags,
            author: article.author.into(),
            created_at: article.created_at,
            updated_at: article.updated_at,
            published_at: article.published_at,
            version: article.version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentView {
    pub id: i64,
    pub article_id: i64,
    pub author: AuthorView,
    pub body: String,
    #[serde(with = "serde_iso8601")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<Comment> for CommentView {
    fn from(comment: Comment) -> Self {
        Self {
            id: comment.id,
            article_id: comment.article_id,
            author: comment.author.into(),
            body: comment.body,
            created_at: comment.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagView {
    pub name: String,
    /// Published articles carrying the tag.
    pub articles: i64,
}

impl From<TagCount> for TagView {
    fn from(tag: TagCount) -> Self {
        Self {
            name: tag.name,
            articles: tag.articles,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: Role,
    #[serde(with = "serde_iso8601")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            role: user.role,
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaginationView {
    /// The page number, or `null` on a page asked for by cursor (`after`).
    pub page: Option<u32>,
    pub per_page: u32,
    /// Items in the whole list, on numbered pages; `null` on a page by
    /// cursor, which stays the same however many items arrive before it.
    /// Exact, except for searches (`q`) and an author within a tag, which
    /// count up to 1,000 (see `total_capped`).
    pub total: Option<u64>,
    /// Pages of `per_page` in the whole list; `null` on a page by cursor.
    pub pages: Option<u64>,
    /// Present and `true` when counting stopped at 1,000: more match, and
    /// `links.next` reaches them all.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub total_capped: bool,
}

/// Relative links to this page and its neighbours, with canonical parameters.
/// `next` always goes by cursor (`after`), so following it costs the same at
/// any depth; `prev` is given for numbered pages.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinksView {
    #[serde(rename = "self")]
    pub self_: String,
    pub next: Option<String>,
    pub prev: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListView<T> {
    pub items: Vec<T>,
    pub pagination: PaginationView,
    pub links: LinksView,
}

impl<T> ListView<T> {
    /// `path` is the list's URL path, `params` the non-paging query
    /// parameters in canonical order (empty values are left out).
    pub fn new<D: Into<T>, C: Display>(
        paged: Paged<D, C>,
        path: &str,
        params: &[(&str, &str)],
    ) -> Self {
        let pages = paged.pages();
        let per_page = paged.page.per_page;
        let link = |start: &PageStart<&dyn Display>| {
            format!("{path}?{}", page_query(params, start, per_page))
        };
        let start = match &paged.page.start {
            PageStart::Number(n) => PageStart::Number(*n),
            PageStart::After(cursor) => PageStart::After(cursor as &dyn Display),
        };
        let last = u32::try_from(pages).unwrap_or(u32::MAX).max(1);
        let prev = match start {
            PageStart::Number(n) if n > 1 => Some(link(&PageStart::Number((n - 1).min(last)))),
            _ => None,
        };
        let links = LinksView {
            self_: link(&start),
            next: paged
                .next
                .as_ref()
                .map(|cursor| link(&PageStart::After(cursor as &dyn Display))),
            prev,
        };
        let numbered = paged.page.page_number().is_some();
        Self {
            items: paged.items.into_iter().map(Into::into).collect(),
            pagination: PaginationView {
                page: paged.page.page_number(),
                per_page,
                total: numbered.then_some(paged.total),
                pages: numbered.then_some(pages),
                total_capped: numbered && paged.total_capped,
            },
            links,
        }
    }
}

/// The canonical query string of one page of a list: the non-empty
/// `params` in the order given, then `page` or `after`, then `per_page`.
/// Links and cache keys both use it, so equal requests spell it the same way.
pub fn page_query<C: Display>(
    params: &[(&str, &str)],
    start: &PageStart<C>,
    per_page: u32,
) -> String {
    let (name, value) = match start {
        PageStart::Number(n) => ("page", n.to_string()),
        PageStart::After(cursor) => ("after", cursor.to_string()),
    };
    let per_page = per_page.to_string();
    let query: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(_, value)| !value.is_empty())
        .chain([(name, value.as_str()), ("per_page", per_page.as_str())])
        .collect();
    serde_urlencoded::to_string(query).unwrap_or_default()
}

/// The token endpoint's answer (RFC 6749 section 5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single use: exchanging it returns a new one.
    pub refresh_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PageRequest;

    fn paged(page: u32, total: u64, next: Option<&str>) -> Paged<TagCount, String> {
        Paged {
            items: vec![],
            page: PageRequest::number(page, 10).unwrap(),
            total,
            total_capped: false,
            next: next.map(str::to_owned),
        }
    }

    #[test]
    fn links_go_forward_by_cursor_and_back_by_number_with_encoded_parameters() {
        let list: ListView<TagView> = ListView::new(
            paged(2, 35, Some("c++")),
            "/t",
            &[("q", "a&b c"), ("tag", "")],
        );
        assert_eq!(list.links.self_, "/t?q=a%26b+c&page=2&per_page=10");
        assert_eq!(
            list.links.next.as_deref(),
            Some("/t?q=a%26b+c&after=c%2B%2B&per_page=10")
        );
        assert_eq!(
            list.links.prev.as_deref(),
            Some("/t?q=a%26b+c&page=1&per_page=10")
        );
        assert_eq!(list.pagination.pages, Some(4));
        assert_eq!(list.pagination.total, Some(35));
        assert_eq!(list.pagination.page, Some(2));
    }

    #[test]
    fn the_last_page_has_no_next_and_the_first_no_prev() {
        let first: ListView<TagView> = ListView::new(paged(1, 5, None), "/t", &[]);
        assert!(first.links.next.is_none() && first.links.prev.is_none());
        let beyond: ListView<TagView> = ListView::new(paged(9, 15, None), "/t", &[]);
        assert!(beyond.links.next.is_none());
        assert_eq!(beyond.links.prev.as_deref(), Some("/t?page=2&per_page=10"));
    }

    #[test]
    fn a_cursor_page_has_no_number_and_no_prev() {
        let page = Paged::<TagCount, i64> {
            items: vec![],
            page: PageRequest::after(42, 10),
            total: 100,
            total_capped: false,
            next: Some(52),
        };
        let list: ListView<TagView> = ListView::new(page, "/t", &[]);
        assert_eq!(list.pagination.page, None);
        assert_eq!(list.pagination.total, None, "a cursor page has no total");
        assert_eq!(list.pagination.pages, None);
        assert_eq!(list.links.self_, "/t?after=42&per_page=10");
        assert_eq!(list.links.next.as_deref(), Some("/t?after=52&per_page=10"));
        assert_eq!(list.links.prev, None);
    }
}
