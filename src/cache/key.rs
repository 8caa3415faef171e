//! What is cached under which name, and which invalidation families each
//! cached response belongs to.
//!
//! A family is a set of responses that one kind of write makes stale. Writes
//! name the families they touch (see `crate::writes`); lists cannot be
//! enumerated for deletion, but their families can be bumped.
//!
//! Some families have a generation in Redis too ([`Family::is_shared`]):
//! they fence the shared tier, which validates an entry by the families its
//! request names. The rest are finer and local: a list page in the local
//! tier depends on the order it shows and on the very articles it shows,
//! which only its content tells (see [`Key::local`] and
//! `Cache::get_or_load`).

use std::fmt::{self, Write};
use std::str::FromStr;

use compact_str::CompactString;
use smallvec::{SmallVec, smallvec};

use crate::labels::RouteFamily;

/// A set of cached responses that some write makes stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// One article: its own response, and every list page that shows it.
    Article(i64),
    /// Lists of every article (in the shared tier).
    Articles,
    /// Lists of one author's articles (by the canonical form of the
    /// username; in the shared tier).
    Author(String),
    /// Lists of one tag's articles (in the shared tier).
    Tag(String),
    /// One article's comments.
    Comments(i64),
    /// One comment.
    Comment(i64),
    /// The tag list.
    Tags,
    /// One user: their profile, and their role and tokens to authorization.
    User(i64),
    /// The numbered pages of one order of a feed (local tier only).
    Order(Order),
    /// The pages by cursor of one order that show this article (local tier
    /// only).
    Gap(Order, i64),
    /// The pages by cursor that seek from this article, in one sort (local
    /// tier only).
    Anchor(i64, u8),
}

/// One order of a feed: its articles in one status by one sort key, as the
/// cache spells it (the write and read sides name them the same way).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Order {
    pub feed: FeedName,
    /// The status's index (`draft` 0, `published` 1).
    pub status: u8,
    /// The sort key's index.
    pub key: u8,
}

/// A feed: every article, one author's (lower-cased username) or one tag's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedName {
    All,
    Author(String),
    Tag(String),
}

impl Family {
    /// Whether the family has a generation in Redis, fencing the shared
    /// tier (the finer list families fence the local tier only).
    pub fn is_shared(&self) -> bool {
        !matches!(
            self,
            Family::Order(_) | Family::Gap(..) | Family::Anchor(..)
        )
    }

    /// The CDN surrogate key: short, stable, header-safe (`article-42`,
    /// `articles`, `author-ada`, `tag-rust`, `comments-42`, `comment-7`,
    /// `tags`, `user-3`); `None` for the local-only families, whose pages
    /// the CDN knows by their coarser keys.
    pub fn surrogate_key(&self) -> Option<String> {
        let (prefix, rest) = match self {
            Family::Article(id) => ("article-", id.to_string()),
            Family::Articles => ("articles", String::new()),
            Family::Author(name) => ("author-", name.clone()),
            Family::Tag(tag) => ("tag-", tag.clone()),
            Family::Comments(id) => ("comments-", id.to_string()),
            Family::Comment(id) => ("comment-", id.to_string()),
            Family::Tags => ("tags", String::new()),
            Family::User(id) => ("user-", id.to_string()),
            Family::Order(_) | Family::Gap(..) | Family::Anchor(..) => return None,
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
        Some(key)
    }
}

impl fmt::Display for FeedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedName::All => f.write_str("all"),
            FeedName::Author(name) => write!(f, "u:{name}"),
            FeedName::Tag(tag) => write!(f, "t:{tag}"),
        }
    }
}

impl FromStr for FeedName {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        Ok(match text.split_once(':') {
            None if text == "all" => FeedName::All,
            Some(("u", name)) => FeedName::Author(name.to_owned()),
            Some(("t", tag)) => FeedName::Tag(tag.to_owned()),
            _ => return Err(()),
        })
    }
}

/// `<status>/<key>/<feed>`: the feed last, since a tag may hold `/`.
impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.status, self.key, self.feed)
    }
}

impl FromStr for Order {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let mut parts = text.splitn(3, '/');
        let mut number = || parts.next().and_then(|n| n.parse::<u8>().ok()).ok_or(());
        let (status, key) = (number()?, number()?);
        let feed = parts.next().ok_or(())?.parse()?;
        Ok(Order { feed, status, key })
    }
}

/// The canonical spelling, used in Redis keys and invalidation messages:
/// `a:42`, `articles`, `u:ada`, `t:rust`, `c:42`, `m:7`, `tags`, `user:3`,
/// `o:1/0/t:rust` (an order), `g:42:1/0/all` (a gap), `n:42:1` (an anchor).
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
            Family::Order(order) => write!(f, "o:{order}"),
            Family::Gap(order, id) => write!(f, "g:{id}:{order}"),
            Family::Anchor(id, key) => write!(f, "n:{id}:{key}"),
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
            Some(("o", rest)) => Family::Order(rest.parse()?),
            Some(("g", rest)) => {
                let (article, order) = rest.split_once(':').ok_or(())?;
                Family::Gap(order.parse()?, id(article)?)
            }
            Some(("n", rest)) => {
                let (article, key) = rest.split_once(':').ok_or(())?;
                Family::Anchor(id(article)?, key.parse().map_err(|_| ())?)
            }
            _ => return Err(()),
        })
    }
}

/// The families of one key: at most three (a list's author, tag and cursor).
pub type Families = SmallVec<[Family; 3]>;

/// A cached response's name and the families its request names. Built on
/// every read, so short names and the families stay inline: a hit
/// allocates nothing for its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Unique, canonical name of the response (`a:42`, `l:?tag=rust&page=1...`).
    pub name: CompactString,
    /// The families that fence the shared copy: every write that could
    /// change the response bumps one of them.
    pub shared: Families,
    /// The families that fence the local copy as far as the request tells;
    /// a list page adds those its content names (the articles it shows).
    pub local: Families,
    pub route: RouteFamily,
}

impl Key {
    fn new(name: CompactString, family: Family, route: RouteFamily) -> Self {
        Self {
            name,
            shared: smallvec![family.clone()],
            local: smallvec![family],
            route,
        }
    }

    pub fn article(id: i64) -> Self {
        Self::new(id_name("a:", id), Family::Article(id), RouteFamily::Article)
    }

    /// `query` is the list's canonical query string, `scope` who may see
    /// drafts in it (empty for published lists), `author` a username in its
    /// canonical form, `after` the article a cursor page seeks from. Shared, it belongs to its feeds' coarse
    /// families; locally, to the `local` families its read names (an order,
    /// and for a cursor page its anchor).
    pub fn articles(
        query: &str,
        scope: &str,
        author: Option<&str>,
        tag: Option<&str>,
        after: Option<i64>,
        local: Families,
    ) -> Self {
        let mut shared = Families::new();
        shared.extend(author.map(|name| Family::Author(name.to_owned())));
        shared.extend(tag.map(|tag| Family::Tag(tag.to_owned())));
        if shared.is_empty() {
            shared.push(Family::Articles);
        }
        shared.extend(after.map(Family::Article));
        Self {
            name: query_name(&["l:", scope, "?"], query),
            shared,
            local,
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
    fn shared_lists_depend_on_their_narrowest_feeds_and_their_cursor() {
        let none = Families::new;
        assert_eq!(
            Key::articles("page=1", "", None, None, None, none()).shared[..],
            [Family::Articles]
        );
        assert_eq!(
            Key::articles("", "", Some("ada"), Some("rust"), Some(7), none()).shared[..],
            [
                Family::Author("ada".into()),
                Family::Tag("rust".into()),
                Family::Article(7)
            ]
        );
        assert_ne!(
            Key::articles("q=a", "", None, None, None, none()).name,
            Key::articles("q=a", "7", None, None, None, none()).name
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
            Family::Order(Order {
                feed: FeedName::Tag("a/b:c".into()),
                status: 1,
                key: 2,
            }),
            Family::Gap(
                Order {
                    feed: FeedName::Author("ada".into()),
                    status: 0,
                    key: 3,
                },
                42,
            ),
            Family::Gap(
                Order {
                    feed: FeedName::All,
                    status: 1,
                    key: 0,
                },
                7,
            ),
            Family::Anchor(9, 1),
        ] {
            assert_eq!(family.to_string().parse::<Family>(), Ok(family));
        }
        assert!("x:1".parse::<Family>().is_err());
        assert!("a:one".parse::<Family>().is_err());
    }

    #[test]
    fn surrogate_keys_are_header_safe() {
        let key = |family: Family| family.surrogate_key().unwrap();
        assert_eq!(key(Family::Article(42)), "article-42");
        assert_eq!(key(Family::Articles), "articles");
        assert_eq!(key(Family::Tag("c++".into())), "tag-c%2B%2B");
        assert_eq!(key(Family::Tag("数".into())), "tag-%E6%95%B0");
        assert_eq!(key(Family::User(3)), "user-3");
        assert_eq!(Family::Anchor(1, 0).surrogate_key(), None);
    }
}
