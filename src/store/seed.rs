//! Realistic sample data in bulk: multi-row inserts in batches, one
//! transaction per batch, so 100,000 articles take seconds, not minutes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use sqlx::{Any, QueryBuilder};

use super::articles::tag_refs;
use super::bulk::Load;
use super::feeds::{CountChanges, FEED_ENTRIES, Indexed, TagRef, add_entries_to};
use super::rows::tag_list;
use super::search::{SEARCH_TERMS, add_postings_to};
use super::{Store, StoreError};
use crate::domain::time::now;
use crate::domain::{ArticleStatus, Role, slugify, summarize};

const BATCH: usize = 1000;
/// Batches written at once.
const WRITERS: usize = 2;
const AUTHORS: usize = 20;
const TWO_YEARS_MS: i64 = 2 * 365 * 24 * 3600 * 1000;

const TAGS: &[&str] = &[
    "rust",
    "web",
    "databases",
    "caching",
    "performance",
    "security",
    "devops",
    "frontend",
    "mobile",
    "design",
    "testing",
    "cloud",
    "linux",
    "networking",
    "ai",
    "data",
    "career",
    "open-source",
    "tutorial",
    "news",
    "mysql",
    "redis",
    "http",
    "api",
    "cdn",
    "tokio",
    "axum",
    "observability",
    "architecture",
    "startups",
];

const WORDS: &[&str] = &[
    "cache",
    "latency",
    "request",
    "server",
    "client",
    "query",
    "index",
    "memory",
    "thread",
    "async",
    "runtime",
    "edge",
    "origin",
    "header",
    "token",
    "article",
    "reader",
    "writer",
    "stream",
    "buffer",
    "replica",
    "primary",
    "shard",
    "queue",
    "event",
    "schema",
    "migration",
    "deploy",
    "metric",
    "trace",
    "budget",
    "design",
    "system",
    "network",
    "packet",
    "router",
    "handler",
    "response",
    "payload",
    "version",
    "conflict",
    "lease",
    "window",
    "burst",
    "throughput",
    "quiet",
    "fast",
    "simple",
    "robust",
    "careful",
    "hidden",
    "shared",
    "local",
    "global",
    "eventual",
    "strong",
    "weak",
    "fresh",
    "stale",
    "warm",
    "cold",
    "hot",
];

/// What a seed run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub authors: usize,
    pub articles: usize,
    pub comments: usize,
    pub elapsed: Duration,
}

impl Store {
    /// Writes `articles` sample articles (90% published) by 20 new authors who
    /// share `password_hash`, with tags and some comments. Articles arrive in
    /// time order over the last two years, as a real feed's do.
    pub async fn seed(
        &self,
        articles: usize,
        password_hash: &str,
    ) -> Result<SeedReport, StoreError> {
        let started = Instant::now();
        let mut rng = StdRng::from_os_rng();
        let run: String = (0..6)
            .map(|_| rng.random_range(b'a'..=b'z') as char)
            .collect();

        let mut authors = Vec::with_capacity(AUTHORS);
        for i in 0..AUTHORS {
            let name = format!("author_{run}_{i:02}");
            authors.push(
                self.upsert_user(&name, password_hash, Role::Author)
                    .await?
                    .value
                    .id,
            );
        }
        let tags: Vec<String> = TAGS.iter().map(|t| (*t).to_owned()).collect();
        self.ensure_tags(&tags).await?;
        let tags = tag_refs(&mut *self.pool.acquire().await?, &tags).await?;

        let clock = SeedClock::new(now().timestamp_millis(), articles);
        let loads = Loads {
            feeds: self.start_load(FEED_ENTRIES).await?,
            postings: self.start_load(SEARCH_TERMS).await?,
        };
        // Batches are made up front in order (the random source is one), then
        // written two at a time: one being generated or committed while the
        // other is inserted keeps both cores busy.
        let batches = (0..articles).step_by(BATCH).map(|first| {
            let size = BATCH.min(articles - first);
            SeedBatch::random(&mut rng, &run, first, size, &clock, &authors, &tags)
        });
        let mut counts = CountChanges::default();
        let mut comments = 0;
        let mut written = Ok(());
        let targets = &loads;
        let mut writes = futures_util::stream::iter(batches)
            .map(|batch| async move { self.seed_batch(&batch, targets).await })
            .buffer_unordered(WRITERS);
        while let Some(result) = writes.next().await {
            match result {
                Ok((batch_counts, batch_comments)) => {
                    counts.merge(batch_counts);
                    comments += batch_comments;
                }
                Err(err) => {
                    written = Err(err);
                    break;
                }
            }
        }
        drop(writes);
        tracing::info!(elapsed = ?started.elapsed(), "seed: articles written");
        // Whatever batches committed are indexed and counted, even if a
        // later one failed.
        let (feeds, postings) = tokio::join!(
            self.finish_load(loads.feeds),
            self.finish_load(loads.postings)
        );
        feeds?;
        postings?;
        tracing::info!(elapsed = ?started.elapsed(), "seed: indexes built");
        let mut tx = self.begin_write().await?;
        counts.apply(&mut tx, self.dialect).await?;
        tx.commit().await?;
        written?;
        Ok(SeedReport {
            authors: AUTHORS,
            articles,
            comments,
            elapsed: started.elapsed(),
        })
    }

    /// Writes one batch in one transaction; the feed sizes it adds and how
    /// many comments it wrote.
    async fn seed_batch(
        &self,
        batch: &SeedBatch,
        loads: &Loads,
    ) -> Result<(CountChanges, usize), StoreError> {
        let mut tx = self.begin_write().await?;
        let mut insert = QueryBuilder::<Any>::new(
            "INSERT INTO articles (slug, title, summary, body, status, tag_list, author_id, \
             created_at, updated_at, published_at, version) ",
        );
        insert.push_values(&batch.articles, |mut row, article| {
            row.push_bind(article.slug.clone())
                .push_bind(article.title.clone())
                .push_bind(summarize(&article.body))
                .push_bind(article.body.clone())
                .push_bind(article.status.as_str())
                .push_bind(article.tag_list.clone())
                .push_bind(article.author_id)
                .push_bind(article.created_at)
                .push_bind(article.created_at)
                .push_bind(
                    (article.status == ArticleStatus::Published).then_some(article.created_at),
                )
                .push_bind(1_i64);
        });
        insert.build().execute(&mut *tx).await?;

        let mut select = QueryBuilder::<Any>::new("SELECT id, slug FROM articles WHERE slug IN (");
        let mut slugs = select.separated(", ");
        for article in &batch.articles {
            slugs.push_bind(article.slug.clone());
        }
        select.push(")");
        let ids: HashMap<String, i64> = select
            .build_query_as::<(i64, String)>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, slug)| (slug, id))
            .collect();
        let ids: Vec<i64> = batch.articles.iter().map(|a| ids[&a.slug]).collect();

        let indexed: Vec<Indexed> = batch
            .articles
            .iter()
            .zip(&ids)
            .map(|(article, &id)| Indexed {
                id,
                status: article.status,
                author_id: article.author_id,
                created_at: article.created_at,
                updated_at: article.created_at,
                published_at: match article.status {
                    ArticleStatus::Published => article.created_at,
                    ArticleStatus::Draft => 0,
                },
                title: &article.title,
                tags: &article.tags,
            })
            .collect();
        let mut counts = CountChanges::default();
        add_entries_to(&mut tx, loads.feeds.target(), &indexed, &mut counts).await?;
        add_postings_to(&mut tx, loads.postings.target(), &indexed, None).await?;
        if !batch.comments.is_empty() {
            let mut insert_comments = QueryBuilder::<Any>::new(
                "INSERT INTO comments (article_id, author_id, body, created_at) ",
            );
            insert_comments.push_values(&batch.comments, |mut row, comment| {
                row.push_bind(ids[comment.article])
                    .push_bind(comment.author_id)
                    .push_bind(comment.body.clone())
                    .push_bind(comment.created_at);
            });
            insert_comments.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((counts, batch.comments.len()))
    }
}

/// Articles and comments of one batch, made before anything is written.
struct SeedBatch {
    articles: Vec<SeedArticle>,
    comments: Vec<SeedComment>,
}

struct SeedComment {
    /// Index of the article in its batch.
    article: usize,
    author_id: i64,
    body: String,
    created_at: i64,
}

impl SeedBatch {
    fn random(
        rng: &mut StdRng,
        run: &str,
        first: usize,
        size: usize,
        clock: &SeedClock,
        authors: &[i64],
        tags: &[TagRef],
    ) -> Self {
        let articles: Vec<SeedArticle> = (first..first + size)
            .map(|n| SeedArticle::random(rng, run, n, clock, authors, tags))
            .collect();
        let mut comments = Vec::new();
        for (article, seeded) in articles.iter().enumerate() {
            for _ in 0..rng.random_range(0..=1) {
                let age = rng.random_range(0..TWO_YEARS_MS / 4);
                comments.push(SeedComment {
                    article,
                    author_id: *authors.choose(rng).unwrap_or(&authors[0]),
                    body: sentence(rng, 12),
                    created_at: (seeded.created_at + age).min(clock.now),
                });
            }
        }
        Self { articles, comments }
    }
}

/// Where a seed writes feed entries and search postings.
struct Loads {
    feeds: Load,
    postings: Load,
}

/// Spreads creation times evenly over the last two years, oldest first.
struct SeedClock {
    start: i64,
    step: i64,
    now: i64,
}

impl SeedClock {
    fn new(now: i64, articles: usize) -> Self {
        let step = TWO_YEARS_MS / i64::try_from(articles.max(1)).unwrap_or(i64::MAX);
        Self {
            start: now - TWO_YEARS_MS,
            step: step.max(1),
            now,
        }
    }

    /// When the `n`th article was written: in its own slot, at a random moment.
    fn at(&self, rng: &mut StdRng, n: usize) -> i64 {
        let slot = i64::try_from(n).unwrap_or(i64::MAX);
        self.start + slot * self.step + rng.random_range(0..self.step)
    }
}

struct SeedArticle {
    slug: String,
    title: String,
    body: String,
    status: ArticleStatus,
    author_id: i64,
    created_at: i64,
    tags: Vec<TagRef>,
    tag_list: String,
}

impl SeedArticle {
    fn random(
        rng: &mut StdRng,
        run: &str,
        n: usize,
        clock: &SeedClock,
        authors: &[i64],
        tags: &[TagRef],
    ) -> Self {
        let draft = rng.random_bool(0.1);
        let words = rng.random_range(3..=8);
        let mut title = sentence(rng, words);
        title.pop();
        let body = (0..rng.random_range(3..=6))
            .map(|_| {
                (0..rng.random_range(3..=5))
                    .map(|_| {
                        let words = rng.random_range(8..=16);
                        sentence(rng, words)
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n\n");
        let count = rng.random_range(1..=3);
        let tags: Vec<TagRef> = tags.choose_multiple(rng, count).cloned().collect();
        let names: Vec<String> = tags.iter().map(|(_, name)| name.clone()).collect();
        Self {
            slug: format!("{}-{run}{n}", slugify(&title)),
            title,
            body,
            status: if draft {
                ArticleStatus::Draft
            } else {
                ArticleStatus::Published
            },
            author_id: *authors.choose(rng).unwrap_or(&authors[0]),
            created_at: clock.at(rng, n),
            tags,
            tag_list: tag_list(&names),
        }
    }
}

/// A capitalised sentence of `words` words ending in a full stop.
fn sentence(rng: &mut StdRng, words: usize) -> String {
    let mut picked: Vec<&str> = (0..words)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"cache"))
        .collect();
    picked.shuffle(rng);
    let mut text = picked.join(" ");
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    text
}
