use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::time::Timestamp;
use crate::domain::{Article, ArticleStatus};
use crate::views::ArticleView;

/// A finished response: the encoded JSON and what conditional requests need.
/// Serving one does no encoding and no database work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub body: Bytes,
    /// Strong, quoted: `"<base64url of the body's SHA-256, 16 bytes>"`.
    pub etag: String,
    pub last_modified: Option<Timestamp>,
    /// For a draft article, its author: only they and moderators may see it.
    pub draft_of: Option<i64>,
}

impl Entry {
    pub fn json<T: Serialize>(value: &T, last_modified: Option<Timestamp>) -> Self {
        let body = serde_json::to_vec(value).expect("views serialise infallibly");
        let digest = Sha256::digest(&body);
        Self {
            etag: format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16])),
            body: Bytes::from(body),
            last_modified,
            draft_of: None,
        }
    }

    pub fn article(article: Article) -> Self {
        let draft_of = (article.status == ArticleStatus::Draft).then_some(article.author.id);
        let updated_at = article.updated_at;
        Self {
            draft_of,
            ..Self::json(&ArticleView::from(article), Some(updated_at))
        }
    }

    /// Whether a viewer (id, whether they moderate) may see this entry.
    pub fn visible_to(&self, viewer: Option<(i64, bool)>) -> bool {
        match self.draft_of {
            None => true,
            Some(author) => viewer.is_some_and(|(id, moderates)| moderates || id == author),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bodies_share_an_etag_and_different_ones_do_not() {
        let a = Entry::json(&serde_json::json!({"a": 1}), None);
        let b = Entry::json(&serde_json::json!({"a": 1}), None);
        let c = Entry::json(&serde_json::json!({"a": 2}), None);
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag);
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
    }

    #[test]
    fn drafts_are_visible_to_their_author_and_moderators_only() {
        let entry = Entry {
            draft_of: Some(7),
            ..Entry::json(&1, None)
        };
        assert!(entry.visible_to(Some((7, false))));
        assert!(entry.visible_to(Some((8, true))));
        assert!(!entry.visible_to(Some((8, false))));
        assert!(!entry.visible_to(None));
    }
}
