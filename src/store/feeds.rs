//! Feeds: the index every article list walks.
//!
//! An article belongs to the feed of every article, to its author's feed and
//! to each of its tags' feeds. `feed_entries` holds one row per membership
//! with the article's status and sort keys, indexed once per sort, so a page
//! is chosen from an index alone, and seeking from a cursor costs what the
//! first page costs (`lists` walks them). `feed_counts` holds each feed's
//! size per status, kept in the write's own transaction, so a total is one
//! row.
//!
//! Reindexing an article also reports what moved (see [`FeedChanges`]): the
//! orders it entered, left or moved in, and the articles next to each place
//! it entered or left, read in the write's transaction, so the cache can
//! make stale exactly the list pages whose bytes changed.

use std::collections::BTreeMap;

use sqlx::{Any, AnyConnection, QueryBuilder};

use super::{Dialect, StoreError};
use crate::domain::{Article, ArticleStatus, Feed as FeedName, FeedChanges, FeedOrder, SortKey};

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

/// A sort key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SortValue {
    Number(i64),
    Text(String),
}

/// The `feed_entries` column of each sort key (a whitelist: pushed as SQL).
pub(super) fn key_column(key: SortKey) -> &'static str {
    match key {
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::PublishedAt => "published_at",
        SortKey::Title => "title",
    }
}

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

    fn sort_values(&self) -> [SortValue; 4] {
        [
            SortValue::Number(self.created_at),
            SortValue::Number(self.updated_at),
            SortValue::Number(self.published_at),
            SortValue::Text(self.title.to_owned()),
        ]
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

/// An article's place in one feed: the feed, its name as readers spell it,
/// the article's status there and its sort keys (in [`SortKey::ALL`] order).
struct Place {
    feed: Feed,
    name: FeedName,
    status: ArticleStatus,
    keys: [SortValue; 4],
}

/// A place in an order that an article entered or left.
struct Spot<'a> {
    feed: Feed,
    order: FeedOrder,
    value: &'a SortValue,
}

/// Removes an article from its feeds (as the database has them) and, if
/// `now` is given, adds it to the feeds of its new state (`author` is its
/// author's username); feed sizes follow. Runs inside the write's
/// transaction, and reports what moved.
pub(super) async fn reindex(
    conn: &mut AnyConnection,
    dialect: Dialect,
    article_id: i64,
    now: Option<(Indexed<'_>, &str)>,
) -> Result<FeedChanges, StoreError> {
    let mut counts = CountChanges::default();
    type OldRow = (i32, i64, String, i64, i64, i64, String, Option<String>);
    let old: Vec<OldRow> = sqlx::query_as(
        "SELECT f.feed_kind, f.feed_id, f.status, f.created_at, f.updated_at, \
         f.published_at, f.title, COALESCE(t.name, u.username) \
         FROM feed_entries f \
         LEFT JOIN tags t ON f.feed_kind = 2 AND t.id = f.feed_id \
         LEFT JOIN users u ON f.feed_kind = 1 AND u.id = f.feed_id \
         WHERE f.article_id = ?",
    )
    .bind(article_id)
    .fetch_all(&mut *conn)
    .await?;
    if !old.is_empty() {
        sqlx::query("DELETE FROM feed_entries WHERE article_id = ?")
            .bind(article_id)
            .execute(&mut *conn)
            .await?;
    }
    let mut before = Vec::with_capacity(old.len());
    for (kind, id, status, created, updated, published, title, name) in old {
        let (kind, name) = match kind {
            0 => (FeedKind::All, FeedName::All),
            1 => (
                FeedKind::Author,
                FeedName::author(&name.unwrap_or_default()),
            ),
            _ => (FeedKind::Tag, FeedName::Tag(name.unwrap_or_default())),
        };
        let status = ArticleStatus::parse(&status).unwrap_or_default();
        counts.add(Feed { kind, id }, status, -1, "");
        before.push(Place {
            feed: Feed { kind, id },
            name,
            status,
            keys: [
                SortValue::Number(created),
                SortValue::Number(updated),
                SortValue::Number(published),
                SortValue::Text(title),
            ],
        });
    }
    let mut after = Vec::new();
    if let Some((article, author)) = now {
        add_entries(conn, std::slice::from_ref(&article), &mut counts).await?;
        for (feed, label) in article.feeds() {
            let name = match feed.kind {
                FeedKind::All => FeedName::All,
                FeedKind::Author => FeedName::author(author),
                FeedKind::Tag => FeedName::Tag(label.to_owned()),
            };
            after.push(Place {
                feed,
                name,
                status: article.status,
                keys: article.sort_values(),
            });
        }
    }
    counts.apply(conn, dialect).await?;
    let (orders, spots) = moves(&before, &after);
    let neighbours = neighbours(conn, article_id, &spots).await?;
    Ok(FeedChanges { orders, neighbours })
}

/// The orders an article entered, left or moved in between two states,
/// and each spot it entered or left in them.
fn moves<'a>(before: &'a [Place], after: &'a [Place]) -> (Vec<FeedOrder>, Vec<Spot<'a>>) {
    let mut orders = Vec::new();
    let mut spots = Vec::new();
    let mut visit = |place: &'a Place, key: usize| {
        let order = FeedOrder {
            feed: place.name.clone(),
            status: place.status,
            key: SortKey::ALL[key],
        };
        if !orders.contains(&order) {
            orders.push(order.clone());
        }
        spots.push(Spot {
            feed: place.feed,
            order,
            value: &place.keys[key],
        });
    };
    let same = |a: &Place, b: &Place| a.feed == b.feed && a.status == b.status;
    for (places, others) in [(before, after), (after, before)] {
        for place in places {
            let kept = others.iter().find(|other| same(place, other));
            for key in 0..SortKey::ALL.len() {
                if kept.is_none_or(|other| other.keys[key] != place.keys[key]) {
                    visit(place, key);
                }
            }
        }
    }
    (orders, spots)
}

/// For each spot, the articles just before and just after it in its order
/// (other than the article itself), in one statement: an index dive each.
async fn neighbours(
    conn: &mut AnyConnection,
    article_id: i64,
    spots: &[Spot<'_>],
) -> Result<Vec<(FeedOrder, i64)>, StoreError> {
    if spots.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = QueryBuilder::<Any>::new("");
    for (i, spot) in spots.iter().enumerate() {
        for (n, (below, direction)) in [(true, " DESC"), (false, " ASC")].into_iter().enumerate() {
            if i + n > 0 {
                query.push(" UNION ALL ");
            }
            let column = key_column(spot.order.key);
            let (within, beyond) = if below {
                (" <= ", " < ")
            } else {
                (" >= ", " > ")
            };
            query
                .push("SELECT * FROM (SELECT ")
                .push_bind(i64::try_from(i).unwrap_or(i64::MAX))
                .push(" AS spot, article_id FROM feed_entries WHERE feed_kind = ")
                .push_bind(spot.feed.kind as i32)
                .push(" AND feed_id = ")
                .push_bind(spot.feed.id)
                .push(" AND status = ")
                .push_bind(spot.order.status.as_str())
                .push(" AND article_id <> ")
                .push_bind(article_id)
                .push(" AND ")
                .push(column)
                .push(within);
            push_value(&mut query, spot.value);
            query.push(" AND (").push(column).push(beyond);
            push_value(&mut query, spot.value);
            query
                .push(" OR article_id")
                .push(beyond)
                .push_bind(article_id)
                .push(") ORDER BY ")
                .push(column)
                .push(direction)
                .push(", article_id")
                .push(direction)
                .push(" LIMIT 1) n");
            query.push(i64::try_from(2 * i + n).unwrap_or(0));
        }
    }
    let rows: Vec<(i64, i64)> = query.build_query_as().fetch_all(conn).await?;
    let mut found: Vec<(FeedOrder, i64)> = Vec::with_capacity(rows.len());
    for (spot, id) in rows {
        let Some(spot) = usize::try_from(spot).ok().and_then(|i| spots.get(i)) else {
            continue;
        };
        let neighbour = (spot.order.clone(), id);
        if !found.contains(&neighbour) {
            found.push(neighbour);
        }
    }
    Ok(found)
}

/// Binds a sort key's value.
pub(super) fn push_value(query: &mut QueryBuilder<Any>, value: &SortValue) {
    match value {
        SortValue::Number(n) => {
            query.push_bind(*n);
        }
        SortValue::Text(t) => {
            query.push_bind(t.clone());
        }
    }
}
