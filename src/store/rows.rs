//! Rows as the database returns them, and their conversion to domain types.

use sqlx::FromRow;

use crate::domain::time::from_millis;
use crate::domain::{Article, ArticleStatus, Author, Comment, Role, TagCount, User};

/// The columns of an [`ArticleRow`] (without the body), selected from
/// `articles a` joined with `users u`; a macro so that statements built with
/// `concat!` stay static strings.
macro_rules! article_columns {
    () => {
        "a.id, a.slug, a.title, a.summary, a.status, a.tag_list, a.author_id, \
         u.username AS author_username, a.created_at, a.updated_at, a.published_at, a.version"
    };
}
pub(super) use article_columns;

#[derive(FromRow)]
pub(super) struct ArticleRow {
    id: i64,
    slug: String,
    title: String,
    summary: String,
    /// Lists leave the body out.
    #[sqlx(default)]
    body: Option<String>,
    status: String,
    /// The article's tags, sorted and separated by spaces (no tag has one).
    tag_list: String,
    author_id: i64,
    author_username: String,
    created_at: i64,
    updated_at: i64,
    published_at: Option<i64>,
    version: i64,
}

impl ArticleRow {
    pub(super) fn into_article(self) -> Article {
        let tags = self
            .tag_list
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        Article {
            id: self.id,
            slug: self.slug,
            title: self.title,
            summary: self.summary,
            body: self.body,
            status: ArticleStatus::parse(&self.status).unwrap_or(ArticleStatus::Draft),
            tags,
            author: Author {
                id: self.author_id,
                username: self.author_username,
            },
            created_at: from_millis(self.created_at),
            updated_at: from_millis(self.updated_at),
            published_at: self.published_at.map(from_millis),
            version: self.version,
        }
    }

    pub(super) fn id(&self) -> i64 {
        self.id
    }
}

/// How an article's tags are stored in its row: sorted, space-separated.
pub(super) fn tag_list(tags: &[String]) -> String {
    let mut sorted: Vec<&str> = tags.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.join(" ")
}

#[derive(FromRow)]
pub(super) struct UserRow {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub created_at: i64,
    #[sqlx(default)]
    pub password_hash: Option<String>,
    #[sqlx(default)]
    pub token_version: Option<i64>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            username: row.username,
            // Unknown roles (never written by us) get the least power.
            role: Role::parse(&row.role).unwrap_or(Role::Reader),
            created_at: from_millis(row.created_at),
        }
    }
}

#[derive(FromRow)]
pub(super) struct CommentRow {
    id: i64,
    article_id: i64,
    author_id: i64,
    author_username: String,
    body: String,
    created_at: i64,
}

impl From<CommentRow> for Comment {
    fn from(row: CommentRow) -> Self {
        Comment {
            id: row.id,
            article_id: row.article_id,
            author: Author {
                id: row.author_id,
                username: row.author_username,
            },
            body: row.body,
            created_at: from_millis(row.created_at),
        }
    }
}

#[derive(FromRow)]
pub(super) struct TagCountRow {
    name: String,
    articles: i64,
}

impl From<TagCountRow> for TagCount {
    fn from(row: TagCountRow) -> Self {
        TagCount {
            name: row.name,
            articles: row.articles,
        }
    }
}
