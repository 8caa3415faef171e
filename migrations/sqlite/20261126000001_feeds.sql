-- Feeds that stay fast at any size and reads that see one version; see the
-- MySQL migration of the same name for the design.

ALTER TABLE articles ADD COLUMN tag_list TEXT NOT NULL DEFAULT '';

CREATE TABLE feed_entries (
    article_id   INTEGER NOT NULL,
    feed_kind    INTEGER NOT NULL,
    feed_id      INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    author_id    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    published_at INTEGER NOT NULL,
    title        TEXT    NOT NULL,
    PRIMARY KEY (article_id, feed_kind, feed_id)
) WITHOUT ROWID;

CREATE TABLE feed_counts (
    feed_kind INTEGER NOT NULL,
    feed_id   INTEGER NOT NULL,
    status    TEXT    NOT NULL,
    label     TEXT    NOT NULL,
    articles  INTEGER NOT NULL,
    PRIMARY KEY (feed_kind, feed_id, status)
) WITHOUT ROWID;

UPDATE articles SET tag_list = COALESCE((
    SELECT group_concat(name, ' ') FROM (
        SELECT t.name FROM article_tags at JOIN tags t ON t.id = at.tag_id
        WHERE at.article_id = articles.id ORDER BY t.name
    )
), '');

INSERT INTO feed_entries (article_id, feed_kind, feed_id, status, author_id, created_at, updated_at, published_at, title)
SELECT id, 0, 0, status, author_id, created_at, updated_at, COALESCE(published_at, 0), title FROM articles;

INSERT INTO feed_entries (article_id, feed_kind, feed_id, status, author_id, created_at, updated_at, published_at, title)
SELECT id, 1, author_id, status, author_id, created_at, updated_at, COALESCE(published_at, 0), title FROM articles;

INSERT INTO feed_entries (article_id, feed_kind, feed_id, status, author_id, created_at, updated_at, published_at, title)
SELECT a.id, 2, at.tag_id, a.status, a.author_id, a.created_at, a.updated_at, COALESCE(a.published_at, 0), a.title
FROM article_tags at JOIN articles a ON a.id = at.article_id;

INSERT INTO feed_counts (feed_kind, feed_id, status, label, articles)
SELECT 0, 0, status, '', COUNT(*) FROM articles GROUP BY status;

INSERT INTO feed_counts (feed_kind, feed_id, status, label, articles)
SELECT 1, author_id, status, '', COUNT(*) FROM articles GROUP BY author_id, status;

INSERT INTO feed_counts (feed_kind, feed_id, status, label, articles)
SELECT 2, at.tag_id, a.status, t.name, COUNT(*)
FROM article_tags at JOIN articles a ON a.id = at.article_id JOIN tags t ON t.id = at.tag_id
GROUP BY at.tag_id, t.name, a.status;

CREATE INDEX feed_entries_created ON feed_entries (feed_kind, feed_id, status, created_at, article_id);
CREATE INDEX feed_entries_updated ON feed_entries (feed_kind, feed_id, status, updated_at, article_id);
CREATE INDEX feed_entries_published ON feed_entries (feed_kind, feed_id, status, published_at, article_id);
CREATE INDEX feed_entries_title ON feed_entries (feed_kind, feed_id, status, title, article_id);
CREATE INDEX feed_counts_ranked ON feed_counts (feed_kind, status, articles DESC, label);

DROP TABLE article_tags;

DROP INDEX articles_status_created;
DROP INDEX articles_status_updated;
DROP INDEX articles_status_published;
DROP INDEX articles_status_title;
ALTER TABLE articles DROP COLUMN title_search;

CREATE TABLE search_terms (
    term       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    article_id INTEGER NOT NULL,
    author_id  INTEGER NOT NULL,
    PRIMARY KEY (term, status, created_at, article_id)
) WITHOUT ROWID;
CREATE INDEX search_terms_article ON search_terms (article_id, term);

CREATE TABLE backfills (
    name    TEXT    NOT NULL PRIMARY KEY,
    done_at INTEGER
);

INSERT INTO backfills (name, done_at) VALUES ('search_terms', NULL);
