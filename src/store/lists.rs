//! Lists of articles: each walks one feed (or, for a search, the postings
//! of one word) in the index of its sort, from the first page or from a
//! cursor, then joins the page to its articles. See `feeds` for what the
//! feeds hold and `search` for the postings.

use sqlx::{Any, AnyConnection, QueryBuilder, Row};

use super::feeds::{Feed, FeedKind, SortValue, push_value};
use super::rows::{ArticleRow, article_columns};
use super::{Store, StoreError};
use crate::domain::{
    Article, ArticleFilter, ArticleSort, ArticleStatus, DraftScope, PageRequest, Paged, SortKey,
};

/// Totals that no kept count answers (a search, or an author within a tag)
/// are counted up to this many matches.
pub const COUNT_LIMIT: u64 = 1_000;

/// A search sorted other than by creation time orders its newest this many
/// matches (newest first is the postings' own order, at any depth).
pub const SEARCH_WINDOW: i64 = 1_000;

/// How far the postings of each word of a search are counted to pick the
/// rarest one to walk.
const RARITY_PROBE: i64 = 10_000;

/// The feed a list walks, its status, and an author it is narrowed to (an
/// author's drafts within a tag, or an author within a tag).
#[derive(Debug, Clone, Copy)]
struct Selection {
    feed: Feed,
    status: ArticleStatus,
    author: Option<i64>,
}

/// How a list query names the sort columns it orders by.
struct Columns {
    id: &'static str,
    created_at: &'static str,
    updated_at: &'static str,
    published_at: &'static str,
    title: &'static str,
}

impl Columns {
    const FEED: Columns = Columns {
        id: "f.article_id",
        created_at: "f.created_at",
        updated_at: "f.updated_at",
        published_at: "f.published_at",
        title: "f.title",
    };
    /// Search postings carry the creation time only.
    const POSTINGS: Columns = Columns {
        id: "s.article_id",
        created_at: "s.created_at",
        updated_at: "s.created_at",
        published_at: "s.created_at",
        title: "s.created_at",
    };

    fn key(&self, sort: ArticleSort) -> &'static str {
        match sort.key() {
            SortKey::CreatedAt => self.created_at,
            SortKey::UpdatedAt => self.updated_at,
            SortKey::PublishedAt => self.published_at,
            SortKey::Title => self.title,
        }
    }
}

/// A step of a statement's plan, as MySQL's `EXPLAIN` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStep {
    pub table: String,
    /// The access type: `ref`, `range`, `eq_ref`... or `ALL` and `index` for
    /// scans.
    pub access: String,
    pub key: Option<String>,
    pub extra: String,
}

/// The words of a search: the rarest, whose postings are walked, and the
/// others, checked by key for each posting.
struct Words<'a> {
    walked: &'a str,
    checked: Vec<&'a str>,
}

/// A list request resolved against the database: the feed (or search
/// postings) it walks and where it starts.
struct ListQuery<'a> {
    filter: &'a ArticleFilter,
    selection: Selection,
    words: Option<Words<'a>>,
    after: Option<(SortValue, i64)>,
    page: &'a PageRequest,
}

impl ListQuery<'_> {
    /// The page: ids and sort keys from an index first (up to one more row
    /// than a page), then their articles.
    fn page(&self, verb: &str) -> QueryBuilder<Any> {
        let direction = if self.filter.sort.descending() {
            " DESC"
        } else {
            " ASC"
        };
        let mut query = QueryBuilder::<Any>::new(verb);
        query.push(article_columns!()).push(" FROM (SELECT ");
        let columns = match &self.words {
            Some(_) if self.filter.sort.key() == SortKey::CreatedAt => {
                let columns = &Columns::POSTINGS;
                push_key_columns(&mut query, columns, self.filter.sort);
                self.push_postings(&mut query);
                columns
            }
            Some(_) => {
                // The newest matches, then their sort keys from the feed of
                // every article.
                let columns = &Columns::FEED;
                push_key_columns(&mut query, columns, self.filter.sort);
                query.push(" FROM (SELECT s.article_id");
                self.push_postings(&mut query);
                query
                    .push(" ORDER BY s.created_at DESC, s.article_id DESC LIMIT ")
                    .push_bind(SEARCH_WINDOW)
                    .push(
                        ") w JOIN feed_entries f ON f.article_id = w.article_id \
                         AND f.feed_kind = 0 AND f.feed_id = 0 WHERE 1 = 1",
                    );
                columns
            }
            None => {
                let columns = &Columns::FEED;
                push_key_columns(&mut query, columns, self.filter.sort);
                self.push_feed(&mut query);
                columns
            }
        };
        let key = columns.key(self.filter.sort);
        if let Some((value, id)) = &self.after {
            push_seek(&mut query, columns, self.filter.sort, value, *id);
        }
        query
            .push(" ORDER BY ")
            .push(key)
            .push(direction)
            .push(", ")
            .push(columns.id)
            .push(direction)
            .push(" LIMIT ")
            .push_bind(self.page.fetch_limit())
            .push(" OFFSET ")
            .push_bind(i64::try_from(self.page.offset()).unwrap_or(i64::MAX))
            .push(") p JOIN articles a ON a.id = p.id JOIN users u ON u.id = a.author_id")
            .push(" ORDER BY p.sort_key")
            .push(direction)
            .push(", p.id")
            .push(direction);
        query
    }

    /// How many match, up to [`COUNT_LIMIT`]; `None` when a kept feed size
    /// answers instead.
    fn count(&self, verb: &str) -> Option<QueryBuilder<Any>> {
        if self.words.is_none() && self.selection.author.is_none() {
            return None;
        }
        let mut count = QueryBuilder::<Any>::new(verb);
        count.push("COUNT(*) FROM (SELECT 1 AS one");
        match self.words {
            Some(_) => self.push_postings(&mut count),
            None => self.push_feed(&mut count),
        }
        count
            .push(" LIMIT ")
            .push_bind(i64::try_from(COUNT_LIMIT).unwrap_or(i64::MAX))
            .push(") c");
        Some(count)
    }

    /// ` FROM feed_entries f WHERE ...`: the feed's rows, before any cursor.
    fn push_feed(&self, query: &mut QueryBuilder<Any>) {
        let selection = self.selection;
        query
            .push(" FROM feed_entries f WHERE f.feed_kind = ")
            .push_bind(selection.feed.kind as i32)
            .push(" AND f.feed_id = ")
            .push_bind(selection.feed.id)
            .push(" AND f.status = ")
            .push_bind(selection.status.as_str());
        if let Some(author) = selection.author {
            query.push(" AND f.author_id = ").push_bind(author);
        }
    }

    /// ` FROM search_terms s WHERE ...`: the postings of the walked word
    /// whose articles have the other words and fit the filter.
    fn push_postings(&self, query: &mut QueryBuilder<Any>) {
        let Some(words) = &self.words else { return };
        let selection = self.selection;
        query
            .push(" FROM search_terms s WHERE s.term = ")
            .push_bind(words.walked.to_owned())
            .push(" AND s.status = ")
            .push_bind(selection.status.as_str());
        let author = match selection.feed.kind {
            FeedKind::Author => Some(selection.feed.id),
            _ => selection.author,
        };
        if let Some(author) = author {
            query.push(" AND s.author_id = ").push_bind(author);
        }
        for word in &words.checked {
            query
                .push(
                    " AND EXISTS (SELECT 1 FROM search_terms o \
                     WHERE o.article_id = s.article_id AND o.term = ",
                )
                .push_bind((*word).to_owned())
                .push(")");
        }
        if selection.feed.kind == FeedKind::Tag {
            query
                .push(
                    " AND EXISTS (SELECT 1 FROM feed_entries t WHERE t.article_id = s.article_id \
                     AND t.feed_kind = 2 AND t.feed_id = ",
                )
                .push_bind(selection.feed.id)
                .push(")");
        }
    }
}

/// `<id> AS id, <sort key> AS sort_key`.
fn push_key_columns(query: &mut QueryBuilder<Any>, columns: &Columns, sort: ArticleSort) {
    query
        .push(columns.id)
        .push(" AS id, ")
        .push(columns.key(sort))
        .push(" AS sort_key");
}

impl Store {
    /// One page of articles (without bodies) and the number matching in all.
    pub async fn list_articles(
        &self,
        filter: &ArticleFilter,
        page: PageRequest,
    ) -> Result<Paged<Article>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(query) = resolve(&mut conn, filter, &page).await? else {
            return Ok(Paged::from_rows(
                Vec::new(),
                page,
                0,
                |article: &Article| article.id,
            ));
        };
        let rows: Vec<ArticleRow> = query
            .page("SELECT ")
            .build_query_as()
            .fetch_all(&mut *conn)
            .await?;
        let (total, capped) = match query.count("SELECT ") {
            None => (kept_count(&mut conn, query.selection).await?, false),
            Some(mut count) => {
                let counted: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;
                let counted = u64::try_from(counted).unwrap_or(0);
                (counted, counted >= COUNT_LIMIT)
            }
        };
        drop(query);
        let rows = Paged::from_rows(rows, page, total, ArticleRow::id);
        Ok(Paged {
            items: rows
                .items
                .into_iter()
                .map(ArticleRow::into_article)
                .collect(),
            page: rows.page,
            total: rows.total,
            total_capped: capped,
            next: rows.next,
        })
    }

    /// How MySQL would run a list's statements (the page, then the count if
    /// one is needed): for checking that every list shape reads an index,
    /// never scans or sorts a table. `None` if the list matches nothing
    /// before any statement runs.
    pub async fn explain_list_articles(
        &self,
        filter: &ArticleFilter,
        page: &PageRequest,
    ) -> Result<Option<Vec<PlanStep>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(query) = resolve(&mut conn, filter, page).await? else {
            return Ok(None);
        };
        let mut steps = Vec::new();
        let statements =
            std::iter::once(query.page("EXPLAIN SELECT ")).chain(query.count("EXPLAIN SELECT "));
        for mut statement in statements {
            for row in statement.build().fetch_all(&mut *conn).await? {
                let text = |name: &str| -> Result<Option<String>, StoreError> {
                    Ok(row.try_get::<Option<String>, _>(name)?)
                };
                steps.push(PlanStep {
                    table: text("table")?.unwrap_or_default(),
                    access: text("type")?.unwrap_or_default(),
                    key: text("key")?,
                    extra: text("Extra")?.unwrap_or_default(),
                });
            }
        }
        Ok(Some(steps))
    }
}

/// Which feed (or postings) a list walks and from where; `None` when
/// nothing can match. A cursor must name an article the list could show,
/// even when the list is empty for other reasons.
async fn resolve<'a>(
    conn: &mut AnyConnection,
    filter: &'a ArticleFilter,
    page: &'a PageRequest,
) -> Result<Option<ListQuery<'a>>, StoreError> {
    let selection = select(conn, filter).await?;
    let after = match page.cursor() {
        Some(&id) => Some((cursor_value(conn, filter, id).await?, id)),
        None => None,
    };
    let Some(selection) = selection else {
        return Ok(None);
    };
    let words = match &filter.q {
        None => None,
        Some(terms) => match rarest_first(conn, terms.words(), selection.status).await? {
            None => return Ok(None),
            some => some,
        },
    };
    Ok(Some(ListQuery {
        filter,
        selection,
        words,
        after,
        page,
    }))
}

/// The search's words, the one with the fewest postings to walk; `None` if
/// a word has none (nothing can match).
async fn rarest_first<'a>(
    conn: &mut AnyConnection,
    words: &'a [String],
    status: ArticleStatus,
) -> Result<Option<Words<'a>>, StoreError> {
    let mut counted = Vec::with_capacity(words.len());
    for word in words {
        let postings: i64 = if words.len() == 1 {
            1
        } else {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 AS one FROM search_terms \
                 WHERE term = ? AND status = ? LIMIT ?) c",
            )
            .bind(word)
            .bind(status.as_str())
            .bind(RARITY_PROBE)
            .fetch_one(&mut *conn)
            .await?
        };
        if postings == 0 {
            return Ok(None);
        }
        counted.push((postings, word.as_str()));
    }
    counted.sort_by_key(|(postings, _)| *postings);
    let mut words = counted.into_iter().map(|(_, word)| word);
    Ok(words.next().map(|walked| Words {
        walked,
        checked: words.collect(),
    }))
}

/// The feed and conditions a filter reads; `None` when nothing can match
/// (an unknown author or tag, or drafts the caller may not see).
async fn select(
    conn: &mut AnyConnection,
    filter: &ArticleFilter,
) -> Result<Option<Selection>, StoreError> {
    let owner = match (filter.status, filter.drafts) {
        (ArticleStatus::Published, _) | (ArticleStatus::Draft, DraftScope::All) => None,
        (ArticleStatus::Draft, DraftScope::OwnedBy(user)) => Some(user),
        (ArticleStatus::Draft, DraftScope::None) => return Ok(None),
    };
    let author = match &filter.author {
        None => None,
        Some(name) => match id_of(conn, "SELECT id FROM users WHERE username = ?", name).await? {
            None => return Ok(None),
            found => found,
        },
    };
    if let (Some(author), Some(owner)) = (author, owner)
        && author != owner
    {
        return Ok(None);
    }
    let author = author.or(owner);
    let selection = match &filter.tag {
        Some(name) => {
            let Some(id) = id_of(conn, "SELECT id FROM tags WHERE name = ?", name).await? else {
                return Ok(None);
            };
            Selection {
                feed: Feed::tag(id),
                status: filter.status,
                author,
            }
        }
        None => Selection {
            feed: author.map_or(Feed::ALL, Feed::author),
            status: filter.status,
            author: None,
        },
    };
    Ok(Some(selection))
}

/// The id a name looks up, if it exists.
async fn id_of(
    conn: &mut AnyConnection,
    sql: &'static str,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(sql)
        .bind(name)
        .fetch_optional(conn)
        .await?)
}

/// The sort key of the article a cursor names. It must be one this list
/// could show the caller (same status; a draft they may see).
async fn cursor_value(
    conn: &mut AnyConnection,
    filter: &ArticleFilter,
    id: i64,
) -> Result<SortValue, StoreError> {
    type Keys = (String, i64, i64, i64, i64, String);
    let keys: Option<Keys> = sqlx::query_as(
        "SELECT status, author_id, created_at, updated_at, COALESCE(published_at, 0), title \
         FROM articles WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, author, created, updated, published, title)) = keys else {
        return Err(StoreError::UnknownCursor);
    };
    let visible = status == filter.status.as_str()
        && (filter.status == ArticleStatus::Published || filter.drafts.covers(author));
    if !visible {
        return Err(StoreError::UnknownCursor);
    }
    Ok(match filter.sort.key() {
        SortKey::CreatedAt => SortValue::Number(created),
        SortKey::UpdatedAt => SortValue::Number(updated),
        SortKey::PublishedAt => SortValue::Number(published),
        SortKey::Title => SortValue::Text(title),
    })
}

/// ` AND` the rows after (`key`, `id`) in the sort's order. Spelt as a range
/// on the key (`key <= v AND (key < v OR id < x)`) so that the planner seeks
/// in the sort's index instead of filtering it.
fn push_seek(
    query: &mut QueryBuilder<Any>,
    columns: &Columns,
    sort: ArticleSort,
    value: &SortValue,
    id: i64,
) {
    let key = columns.key(sort);
    let (within, beyond) = if sort.descending() {
        (" <= ", " < ")
    } else {
        (" >= ", " > ")
    };
    query.push(" AND ").push(key).push(within);
    push_value(query, value);
    query.push(" AND (").push(key).push(beyond);
    push_value(query, value);
    query
        .push(" OR ")
        .push(columns.id)
        .push(beyond)
        .push_bind(id)
        .push(")");
}

/// A feed's size, kept by every write.
async fn kept_count(conn: &mut AnyConnection, selection: Selection) -> Result<u64, StoreError> {
    let count: Option<i64> = sqlx::query_scalar(
        "SELECT articles FROM feed_counts WHERE feed_kind = ? AND feed_id = ? AND status = ?",
    )
    .bind(selection.feed.kind as i32)
    .bind(selection.feed.id)
    .bind(selection.status.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}
