//! Realistic sample data in bulk: multi-row inserts in batches, one
//! transaction per batch, so 100,000 articles take seconds, not minutes.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use sqlx::{Any, QueryBuilder};

use super::{Store, StoreError};
use crate::domain::time::now;
use crate::domain::{ArticleStatus, Role, slugify, summarize};

const BATCH: usize = 500;
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
    /// share `password_hash`, with tags and some comments.
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
                    .id,
            );
        }
        let mut insert_tags = QueryBuilder::<Any>::new(format!(
            "{} INTO tags (name) ",
            self.dialect.insert_ignore()
        ));
        insert_tags.push_values(TAGS, |mut row, tag| {
            row.push_bind(*tag);
        });
        insert_tags.build().execute(&self.pool).await?;
        let tag_ids: Vec<i64> = {
            let mut query = QueryBuilder::<Any>::new("SELECT id FROM tags WHERE name IN (");
            let mut names = query.separated(", ");
            for tag in TAGS {
                names.push_bind(*tag);
            }
            query.push(")");
            query.build_query_scalar().fetch_all(&self.pool).await?
        };

        let mut comments = 0;
        let mut done = 0;
        while done < articles {
            let size = BATCH.min(articles - done);
            comments += self
                .seed_batch(&mut rng, &run, done, size, &authors, &tag_ids)
                .await?;
            done += size;
        }
        Ok(SeedReport {
            authors: AUTHORS,
            articles,
            comments,
            elapsed: started.elapsed(),
        })
    }

    async fn seed_batch(
        &self,
        rng: &mut StdRng,
        run: &str,
        first: usize,
        size: usize,
        authors: &[i64],
        tag_ids: &[i64],
    ) -> Result<usize, StoreError> {
        let now = now().timestamp_millis();
        let rows: Vec<SeedArticle> = (0..size)
            .map(|i| SeedArticle::random(rng, run, first + i, authors, now))
            .collect();

        let mut tx = self.pool.begin().await?;
        let mut insert = QueryBuilder::<Any>::new(
            "INSERT INTO articles (slug, title, title_search, summary, body, status, author_id, \
             created_at, updated_at, published_at, version) ",
        );
        insert.push_values(&rows, |mut row, article| {
            row.push_bind(article.slug.clone())
                .push_bind(article.title.clone())
                .push_bind(article.title.to_lowercase())
                .push_bind(summarize(&article.body))
                .push_bind(article.body.clone())
                .push_bind(article.status.as_str())
                .push_bind(article.author_id)
                .push_bind(article.created_at)
                .push_bind(article.created_at)
                .push_bind(
                    (article.status == ArticleStatus::Published).then_some(article.created_at),
                )
                .push_bind(1_i64);
        });
        insert.build().execute(&mut *tx).await?;

        let mut select = QueryBuilder::<Any>::new("SELECT id FROM articles WHERE slug IN (");
        let mut slugs = select.separated(", ");
        for article in &rows {
            slugs.push_bind(article.slug.clone());
        }
        select.push(")");
        let ids: Vec<i64> = select.build_query_scalar().fetch_all(&mut *tx).await?;

        let mut links = Vec::new();
        let mut comments = Vec::new();
        for &id in &ids {
            let count = rng.random_range(1..=3);
            for &tag in tag_ids.choose_multiple(rng, count) {
                links.push((id, tag));
            }
            for _ in 0..rng.random_range(0..=1) {
                let author = *authors.choose(rng).unwrap_or(&authors[0]);
                comments.push((
                    id,
                    author,
                    sentence(rng, 12),
                    now - rng.random_range(0..TWO_YEARS_MS / 4),
                ));
            }
        }
        let mut insert_links =
            QueryBuilder::<Any>::new("INSERT INTO article_tags (article_id, tag_id) ");
        insert_links.push_values(&links, |mut row, (article, tag)| {
            row.push_bind(*article).push_bind(*tag);
        });
        insert_links.build().execute(&mut *tx).await?;
        if !comments.is_empty() {
            let mut insert_comments = QueryBuilder::<Any>::new(
                "INSERT INTO comments (article_id, author_id, body, created_at) ",
            );
            insert_comments.push_values(&comments, |mut row, (article, author, body, at)| {
                row.push_bind(*article)
                    .push_bind(*author)
                    .push_bind(body.clone())
                    .push_bind(*at);
            });
            insert_comments.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(comments.len())
    }
}

struct SeedArticle {
    slug: String,
    title: String,
    body: String,
    status: ArticleStatus,
    author_id: i64,
    created_at: i64,
}

impl SeedArticle {
    fn random(rng: &mut StdRng, run: &str, n: usize, authors: &[i64], now: i64) -> Self {
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
            created_at: now - rng.random_range(0..TWO_YEARS_MS),
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
