use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time::Timestamp;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ArticleStatus {
    /// Visible only to its author, editors and admins.
    #[default]
    Draft,
    /// Visible to everyone.
    Published,
}

impl ArticleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleStatus::Draft => "draft",
            ArticleStatus::Published => "published",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "draft" => Some(ArticleStatus::Draft),
            "published" => Some(ArticleStatus::Published),
            _ => None,
        }
    }
}

/// Who wrote an article or a comment, as shown to readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub summary: String,
    /// `None` when loaded for a list, which leaves bodies out.
    pub body: Option<String>,
    pub status: ArticleStatus,
    pub tags: Vec<String>,
    pub author: Author,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub published_at: Option<Timestamp>,
    /// Bumped by every change; the basis of optimistic concurrency.
    pub version: i64,
}

/// The writable part of an article, complete and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleContent {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub status: ArticleStatus,
    pub tags: Vec<String>,
}

const MAX_SLUG_BASE: usize = 100;
const SUMMARY_CHARS: usize = 200;

/// A URL-safe slug from a title: transliterated to ASCII (`Café` → `cafe`,
/// `你好` → `ni-hao`), then letters and digits joined by single hyphens.
/// Titles with nothing left give `"article"`.
pub fn slugify(title: &str) -> String {
    let ascii = deunicode::deunicode(title);
    let mut slug = String::with_capacity(ascii.len().min(MAX_SLUG_BASE));
    for c in ascii.chars() {
        if slug.len() >= MAX_SLUG_BASE {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "article".to_owned()
    } else {
        slug.to_owned()
    }
}

/// The summary used when none is given: the body's first words, cut on a
/// character boundary.
pub fn summarize(body: &str) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", flat[..cut].trim_end()),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_ascii_words_joined_by_single_hyphens() {
        assert_eq!(slugify("Hello, World!  Rust 2024"), "hello-world-rust-2024");
        assert_eq!(
            slugify("  --Leading and trailing--  "),
            "leading-and-trailing"
        );
        assert_eq!(slugify("Émile à Paris"), "emile-a-paris");
        assert_eq!(slugify("你好"), "ni-hao");
        assert_eq!(slugify("!!!"), "article");
        assert_eq!(slugify(&"a".repeat(500)).len(), MAX_SLUG_BASE);
    }

    #[test]
    fn summaries_flatten_whitespace_and_cut_on_char_boundaries() {
        assert_eq!(summarize("one\n\ntwo   three"), "one two three");
        let long = "é".repeat(300);
        let summary = summarize(&long);
        assert_eq!(summary.chars().count(), SUMMARY_CHARS + 1);
        assert!(summary.ends_with('…'));
    }
}
