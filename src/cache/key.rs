//! What is cached under which name, and which invalidation families each
//! cached response belongs to.
//!
//! A family is a set of responses that one kind of write makes stale. Writes
//! name the families they touch (see `crate::writes`); lists cannot be
//! enumerated for deletion, but their families can be bumped.

use std::fmt::{self, Write};
use std::str::FromStr;

use compact_str::CompactString;
use smallvec::{SmallVec, smallvec};

/// Routes grouped for metrics and `Cache-Control` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteFamily {
    Article,
    Articles,
    Comments,
    Comment,
    Tags,
    User,
}

impl RouteFamily {
    pub const ALL: [RouteFamily; 6] = [
        RouteFamily::Article,
        RouteFamily::Articles,
        RouteFamily::Comments,
        RouteFamily::Comment,
        RouteFamily::Tags,
        RouteFamily::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteFamily::Article => "article",
            RouteFamily::Articles => "articles",
            RouteFamily::Comments => "comments",
            RouteFamily::Comment => "comment",
            RouteFamily::Tags => "tags",
            RouteFamily::User => "user",
        }
    }
}

/// A set of cached responses that some write makes stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// One article, and list pages that seek from it (`after=`).
    Article(i64),
    /// Lists of every article.
    Articles,
    /// Lists of one author's articles (the username, lower-cased).
    Author(String),
    /// Lists of one tag's articles.
    Tag(String),
    /// One article's comments.
    Comments(i64),
    /// One comment.
    Comment(i64),
    /// The tag list.
    Tags,
    /// One user: their profile, and their role and tokens to authorization.
    User(i64),
}

impl Family {
    /// Usernames are case-insensitive, so their family is spelt in lower case.
    pub fn author(username: &str) -> Self {
        Family::Author(username.to_ascii_lowercase())
    }

    /// The CDN surrogate key: short, stable, header-safe (`article-42`,
    /// `articles`, `author-ada`, `tag-rust`, `comments-42`, `comment-7`,
    /// `tags`, `user-3`).
    pub fn surrogate_key(&self) -> String {
        let (prefix, rest) = match self {
            Family::Article(id) => ("article-", id.to_string()),
            Family::Articles => ("articles", String::new()),
            Family::Author(name) => ("author-", name.clone()),
            Family::Tag(tag) => ("tag-", tag.clone()),
            Family::Comments(id) => ("comments-", id.to_string()),
            Family::Comment(id) => ("comment-", id.to_string()),
            Family::Tags => ("tags", String::new()),
            Family::User(id) => ("user-", id.to_string()),
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
}

/// The canonical spelling, used in Redis keys and invalidation messages:
/// `a:42`, `articles`, `u:ada`, `t:rust`, `c:42`, `m:7`, `tags`, `user:3`.
impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Family::Article(id) => write!(f, "a:{id}"),
            Family::Articles => f.write_str("articles"),
            Family::Author(name) => write!(f, "u:{name}"),
            Family::Tag(tag) => write!(f, "t:{tag}"),
            Family::Comments(id) => write!(f, "c:{id}"),
            Family::Comment(id) => write!(f, "m:{id}"),
            Family::Tags => f.write_str("tags"),
            Family::User(id) => write!(f, "user:{id}"),
        }
    }
}

impl FromStr for Family {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let id = |s: &str| s.parse::<i64>().map_err(|_| ());
        Ok(match text.split_once(':') {
            None if text == "articles" => Family::Articles,
            None if text == "tags" => Family::Tags,
            Some(("a", rest)) => Family::Article(id(rest)?),
            Some(("u", rest)) => Family::Author(rest.to_owned()),
            Some(("t", rest)) => Family::Tag(rest.to_owned()),
            Some(("c", rest)) => Family::Comments(id(rest)?),
            Some(("m", rest)) => Family::Comment(id(rest)?),
            Some(("user", rest)) => Family::User(id(rest)?),
            _ => return Err(()),
        })
    }
}

/// The families of one key: at most three (a list's author, tag and cursor).
pub type Families = SmallVec<[Family; 3]>;

/// A cached response's name and the families it depends on. Built on every
/// read, so short names and the families stay inline: a hit allocates
/// nothing for its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Unique, canonical name of the response (`a:42`, `l:?tag=rust&page=1...`).
    pub name: CompactString,
    pub families: Families,
    pub route: RouteFamily,
}

impl Key {
    fn new(name: CompactString, family: Family, route: RouteFamily) -> Self {
        Self {
            name,
            families: smallvec![family],
            route,
        }
    }

    pub fn article(id: i64) -> Self {
        Self::new(id_name("a:", id), Family::Article(id), RouteFamily::Article)
    }

    /// `query` is the list's canonical query string, `scope` who may see
    /// drafts in it (empty for published lists), `after` the article a
    /// cursor page seeks from.
    pub fn articles(
        query: &str,
        scope: &str,
        author: Option<&str>,
        tag: Option<&str>,
        after: Option<i64>,
    ) -> Self {
        let mut families = Families::new();
        families.extend(author.map(Family::author));
        families.extend(tag.map(|tag| Family::Tag(tag.to_owned())));
        if families.is_empty() {
            families.push(Family::Articles);
        }
        families.extend(after.map(Family::Article));
        Self {
            name: query_name(&["l:", scope, "?"], query),
            families,
            route: RouteFamily::Articles,
        }
    }

    /// `query` is the page's canonical query string.
    pub fn comments(article_id: i64, query: &str) -> Self {
        let mut name = id_name("c:", article_id);
        name.push('?');
        name.push_str(query);
        Self::new(name, Family::Comments(article_id), RouteFamily::Comments)
    }

    pub fn comment(id: i64) -> Self {
        Self::new(id_name("m:", id), Family::Comment(id), RouteFamily::Comment)
    }

    /// `query` is the page's canonical query string.
    pub fn tags(query: &str) -> Self {
        Self::new(query_name(&["t:?"], query), Family::Tags, RouteFamily::Tags)
    }

    pub fn user(id: i64) -> Self {
        Self::new(id_name("user:", id), Family::User(id), RouteFamily::User)
    }

    /// A user's record as authorization reads it (never served over HTTP):
    /// made stale by the writes that make their profile stale.
    pub fn principal(id: i64) -> Self {
        Self::new(id_name("p:", id), Family::User(id), RouteFamily::User)
    }
}

/// `prefix` then the id in decimal, without going through `fmt`.
fn id_name(prefix: &'static str, id: i64) -> CompactString {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(id);
    let mut name = CompactString::with_capacity(prefix.len() + digits.len());
    name.push_str(prefix);
    name.push_str(digits);
    name
}

fn query_name(parts: &[&str], query: &str) -> CompactString {
    let len = parts.iter().map(|part| part.len()).sum::<usize>() + query.len();
    let mut name = CompactString::with_capacity(len);
    parts.iter().for_each(|part| name.push_str(part));
    name.push_str(query);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_depend_on_their_narrowest_families_and_their_cursor() {
        assert_eq!(
            Key::articles("page=1", "", None, None, None).families[..],
            [Family::Articles]
        );
        assert_eq!(
            Key::articles("", "", Some("Ada"), Some("rust"), Some(7)).families[..],
            [
                Family::Author("ada".into()),
                Family::Tag("rust".into()),
                Family::Article(7)
            ]
        );
        assert_ne!(
            Key::articles("q=a", "", None, None, None).name,
            Key::articles("q=a", "7", None, None, None).name
        );
    }

    #[test]
    fn families_round_trip_through_their_canonical_spelling() {
        for family in [
            Family::Article(42),
            Family::Articles,
            Family::Author("ada".into()),
            Family::Tag("c++".into()),
            Family::Comments(1),
            Family::Comment(2),
            Family::Tags,
            Family::User(3),
        ] {
            assert_eq!(family.to_string().parse::<Family>(), Ok(family));
        }
        assert!("x:1".parse::<Family>().is_err());
        assert!("a:one".parse::<Family>().is_err());
    }

    #[test]
    fn surrogate_keys_are_header_safe() {
        assert_eq!(Family::Article(42).surrogate_key(), "article-42");
        assert_eq!(Family::Articles.surrogate_key(), "articles");
        assert_eq!(Family::Tag("c++".into()).surrogate_key(), "tag-c%2B%2B");
        assert_eq!(Family::Tag("数".into()).surrogate_key(), "tag-%E6%95%B0");
        assert_eq!(Family::User(3).surrogate_key(), "user-3");
    }
}
