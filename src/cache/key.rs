//! What is cached under which name, and which invalidation families each
//! cached response belongs to.
//!
//! A family is a set of responses that one kind of write makes stale:
//! `a:42` (article 42), `articles` (unfiltered lists), `u:ada` (lists by an
//! author), `t:rust` (lists by a tag), `c:42` (comments of article 42) and
//! `tags` (the tag list). Writes bump families; lists cannot be enumerated
//! for deletion, but their families can be bumped.

use std::fmt::Write;

/// At most this many families per cached response.
pub const MAX_FAMILIES: usize = 2;

/// Routes grouped for metrics and `Cache-Control` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteFamily {
    Article,
    Articles,
    Comments,
    Tags,
}

impl RouteFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteFamily::Article => "article",
            RouteFamily::Articles => "articles",
            RouteFamily::Comments => "comments",
            RouteFamily::Tags => "tags",
        }
    }
}

/// A cached response's name and the families it depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Unique, canonical name of the response (`a:42`, `l:?tag=rust&page=1...`).
    pub name: String,
    pub families: Vec<String>,
    pub route: RouteFamily,
}

impl Key {
    pub fn article(id: i64) -> Self {
        Self {
            name: format!("a:{id}"),
            families: vec![article_family(id)],
            route: RouteFamily::Article,
        }
    }

    /// `query` is the list's canonical query string, `scope` who may see
    /// drafts in it (empty for published lists).
    pub fn articles(query: &str, scope: &str, author: Option<&str>, tag: Option<&str>) -> Self {
        let mut families = Vec::with_capacity(MAX_FAMILIES);
        if let Some(author) = author {
            families.push(author_family(author));
        }
        if let Some(tag) = tag {
            families.push(tag_family(tag));
        }
        if families.is_empty() {
            families.push(ARTICLES.to_owned());
        }
        let mut name = format!("l:{scope}?");
        name.push_str(query);
        Self {
            name,
            families,
            route: RouteFamily::Articles,
        }
    }

    pub fn comments(article_id: i64, page: u32, per_page: u32) -> Self {
        Self {
            name: format!("c:{article_id}:{page}:{per_page}"),
            families: vec![comments_family(article_id)],
            route: RouteFamily::Comments,
        }
    }

    pub fn tags(page: u32, per_page: u32) -> Self {
        Self {
            name: format!("t:{page}:{per_page}"),
            families: vec![TAGS.to_owned()],
            route: RouteFamily::Tags,
        }
    }
}

pub const ARTICLES: &str = "articles";
pub const TAGS: &str = "tags";

pub fn article_family(id: i64) -> String {
    format!("a:{id}")
}

/// Usernames are case-insensitive, so their family is spelt in lower case.
pub fn author_family(username: &str) -> String {
    format!("u:{}", username.to_ascii_lowercase())
}

pub fn tag_family(tag: &str) -> String {
    format!("t:{tag}")
}

pub fn comments_family(article_id: i64) -> String {
    format!("c:{article_id}")
}

/// Families an article write touches: the article, the unfiltered lists,
/// its author's lists, the lists of every tag it had or has, the tag list.
pub fn article_families<'a>(
    id: Option<i64>,
    author: &str,
    tags: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut families = vec![ARTICLES.to_owned(), TAGS.to_owned(), author_family(author)];
    families.extend(id.map(article_family));
    for tag in tags {
        let family = tag_family(tag);
        if !families.contains(&family) {
            families.push(family);
        }
    }
    families
}

/// The CDN surrogate key for a family: short, stable, header-safe
/// (`article-42`, `articles`, `author-ada`, `tag-rust`, `comments-42`).
pub fn surrogate_key(family: &str) -> String {
    let (prefix, rest) = match family.split_once(':') {
        Some(("a", id)) => ("article-", id),
        Some(("u", name)) => ("author-", name),
        Some(("t", tag)) => ("tag-", tag),
        Some(("c", id)) => ("comments-", id),
        _ => ("", family),
    };
    let mut key = String::with_capacity(prefix.len() + rest.len());
    key.push_str(prefix);
    for byte in rest.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            key.push(byte as char);
        } else {
            let _ = write!(key, "%{byte:02X}");
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_depend_on_their_narrowest_families() {
        assert_eq!(
            Key::articles("page=1", "", None, None).families,
            ["articles"]
        );
        assert_eq!(
            Key::articles("", "", Some("ada"), Some("rust")).families,
            ["u:ada", "t:rust"]
        );
        assert_ne!(
            Key::articles("q=a", "", None, None).name,
            Key::articles("q=a", "7", None, None).name
        );
    }

    #[test]
    fn surrogate_keys_are_header_safe() {
        assert_eq!(surrogate_key("a:42"), "article-42");
        assert_eq!(surrogate_key("articles"), "articles");
        assert_eq!(surrogate_key("t:c++"), "tag-c%2B%2B");
        assert_eq!(surrogate_key("t:数"), "tag-%E6%95%B0");
    }
}
