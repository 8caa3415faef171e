//! Feeds: the index every article list walks.
//!
//! An article belongs to the feed of every article, to its author's feed and
//! to each of its tags' feeds. `feed_entries` holds one row per membership
//! with the article's status and sort keys, indexed once per sort, so a page
//! is chosen from an index alone, and seeking from a cursor costs what the
//! first page costs (`lists` walks them). `feed_counts` holds each feed's
//! size per status, kept in the write's own transaction, so a total is one
//! row.

use std::collections::BTreeMap;

use sqlx::{Any, AnyConnection, QueryBuilder};

use super::{Dialect, StoreError};
use crate::domain::{Article, ArticleStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum FeedKind {
    All = 0,
    Author = 1,
    Tag = 2,
}

/// One feed: every article, an author's, or a tag's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Feed {
    pub kind: FeedKind,
    pub id: i64,
}

impl Feed {
    pub const ALL: Feed = Feed {
        kind: FeedKind::All,
        id: 0,
    };

    pub fn author(id: i64) -> Self {
        Self {
            kind: FeedKind::Author,
            id,
        }
    }

    pub fn tag(id: i64) -> Self {
        Self {
            kind: FeedKind::Tag,
            id,
        }
    }
}

/// A tag as stored: its id and name.
pub(super) type TagRef = (i64, String);

/// An article as its feeds index it.
pub(super) struct Indexed<'a> {
    pub id: i64,
    pub status: ArticleStatus,
    pub author_id: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// 0 for a draft.
    pub published_at: i64,
    pub title: &'a str,
    pub tags: &'a [TagRef],
}

impl<'a> Indexed<'a> {
    pub fn new(article: &'a Article, tags: &'a [TagRef]) -> Self {
        Self {
            id: article.id,
            status: article.status,
            author_id: article.author.id,
            created_at: article.created_at.timestamp_millis(),
            updated_at: article.updated_at.timestamp_millis(),
            published_at: article.published_at.map_or(0, |t| t.timestamp_millis()),
            title: &article.title,
            tags,
        }
    }

    /// Every feed the article is in, with the label a new count row gets.
    fn feeds(&self) -> impl Iterator<Item = (Feed, &'a str)> + '_ {
        [(Feed::ALL, ""), (Feed::author(self.author_id), "")]
            .into_iter()
            .chain(
                self.tags
                    .iter()
                    .map(|(id, name)| (Feed::tag(*id), name.as_str())),
            )
    }
}

/// Size changes of feeds, by feed and status, with the label a new count
/// row gets.
#[derive(Default)]
pub(super) struct CountChanges(BTreeMap<(Feed, &'static str), (i64, String)>);

impl CountChanges {
    fn add(&mut self, feed: Feed, status: ArticleStatus, delta: i64, label: &str) {
        let entry = self
            .0
            .entry((feed, status.as_str()))
            .or_insert_with(|| (0, String::new()));
        entry.0 += delta;
        if !label.is_empty() {
            label.clone_into(&mut entry.1);
        }
    }

    /// Adds another batch's changes to these.
    pub fn merge(&mut self, other: CountChanges) {
        for ((feed, status), (delta, label)) in other.0 {
            let entry = self
                .0
                .entry((feed, status))
                .or_insert_with(|| (0, String::new()));
            entry.0 += delta;
            if !label.is_empty() {
                entry.1 = label;
            }
        }
    }

    /// One upsert, in key order: concurrent writes lock count rows in the
    /// same order, so they wait for each other instead of deadlocking.
    pub async fn apply(self, conn: &mut AnyConnection, dialect: Dialect) -> Result<(), StoreError> {
        let changes: Vec<_> = self.0.into_iter().filter(|(_, (d, _))| *d != 0).collect();
        if changes.is_empty() {
            return Ok(());
        }
        let mut upsert = QueryBuilder::<Any>::new(
            "INSERT INTO feed_counts (feed_kind, feed_id, status, label, articles) ",
        );
        upsert.push_values(changes, |mut row, ((feed, status), (delta, label))| {
            row.push_bind(feed.kind as i32)
                .push_bind(feed.id)
                .push_bind(status)
                .push_bind(label)
                .push_bind(delta);
        });
        upsert.push(dialect.add_to_counts());
        upsert.build().execute(conn).await?;
        Ok(())
    }
}

/// Puts articles into their feeds, noting the feeds' growth in `counts`.
pub(super) async fn add_entries(
    conn: &mut AnyConnection,
    articles: &[Indexed<'_>],
    counts: &mut CountChanges,
) -> Result<(), StoreError> {
    add_entries_to(conn, FEED_ENTRIES, articles, counts).await
}

pub(super) const FEED_ENTRIES: &str = "feed_entries";

/// [`add_entries`] into `table`: the feed entries, or a bulk load's copy.
pub(super) async fn add_entries_to(
    conn: &mut AnyConnection,
    table: &str,
    articles: &[Indexed<'_>],
    counts: &mut CountChanges,
) -> Result<(), StoreError> {
    let rows: Vec<(&Indexed, Feed)> = articles
        .iter()
        .flat_map(|article| article.feeds().map(move |(feed, _)| (article, feed)))
        .collect();
    for chunk in rows.chunks(ENTRIES_PER_INSERT) {
        let mut insert = QueryBuilder::<Any>::new(format!(
            "INSERT INTO {table} (article_id, feed_kind, feed_id, status, author_id, \
             created_at, updated_at, published_at, title) "
        ));
        insert.push_values(chunk, |mut row, (article, feed)| {
            row.push_bind(article.id)
                .push_bind(feed.kind as i32)
                .push_bind(feed.id)
                .push_bind(article.status.as_str())
                .push_bind(article.author_id)
                .push_bind(article.created_at)
                .push_bind(article.updated_at)
                .push_bind(article.published_at)
                .push_bind(article.title.to_owned());
        });
        insert.build().execute(&mut *conn).await?;
    }
    for article in articles {
        for (feed, label) in article.feeds() {
            counts.add(feed, article.status, 1, label);
        }
    }
    Ok(())
}

/// Rows per statement: 9 parameters each stays under every backend's limit.
const ENTRIES_PER_INSERT: usize = 2000;

/// Removes an article from its feeds (as the database has them) and, if
/// `now` is given, adds it to the feeds of its new state; feed sizes follow.
/// Runs inside the write's transaction.
pub(super) async fn reindex(
    conn: &mut AnyConnection,
    dialect: Dialect,
    article_id: i64,
    now: Option<Indexed<'_>>,
) -> Result<(), StoreError> {
    let mut counts = CountChanges::default();
    let old: Vec<(i32, i64, String)> =
        sqlx::query_as("SELECT feed_kind, feed_id, status FROM feed_entries WHERE article_id = ?")
            .bind(article_id)
            .fetch_all(&mut *conn)
            .await?;
    if !old.is_empty() {
        sqlx::query("DELETE FROM feed_entries WHERE article_id = ?")
            .bind(article_id)
            .execute(&mut *conn)
            .await?;
    }
    for (kind, id, status) in old {
        let kind = match kind {
            0 => FeedKind::All,
            1 => FeedKind::Author,
            _ => FeedKind::Tag,
        };
        let status = ArticleStatus::parse(&status).unwrap_or_default();
        counts.add(Feed { kind, id }, status, -1, "");
    }
    if let Some(article) = now {
        add_entries(conn, &[article], &mut counts).await?;
    }
    counts.apply(conn, dialect).await
}
