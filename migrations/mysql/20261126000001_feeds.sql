-- Feeds that stay fast at any size and reads that see one version.
--
-- * `articles.tag_list` holds an article's tags in its own row, so one
--   statement reads an article whole.
-- * `feed_entries` is the index every list walks: one row per article in
--   each feed it belongs to (every article, its author's, each of its
--   tags'), carrying the sort keys, so a page is chosen from an index
--   alone and seeking from a cursor costs what the first page costs.
-- * `feed_counts` keeps the size of each feed per status, changed in the
--   same transaction as the articles, so totals cost one row.
-- * `search_terms` holds each word of each title with the article's status
--   and creation time, so `q` walks the postings of its rarest word newest
--   first and checks the others by key (the words are written by the
--   application, which also fills the table for existing articles: see
--   `backfills`).
--
-- The backfill runs once, inside this migration, from the tables as they
-- were; on a large database expect it to take a few minutes.

ALTER TABLE articles ADD COLUMN tag_list VARCHAR(400) NOT NULL DEFAULT '';

-- Kinds: 0 every article (id 0), 1 an author's (id = user id), 2 a tag's
-- (id = tag id). `published_at` is 0 for drafts so every sort key is set.
-- A derived index of `articles`, kept by the store in the same transaction:
-- no foreign keys, so writes take no locks on other tables through it.
CREATE TABLE feed_entries (
    article_id   BIGINT       NOT NULL,
    feed_kind    SMALLINT     NOT NULL,
    feed_id      BIGINT       NOT NULL,
    status       VARCHAR(16)  NOT NULL,
    author_id    BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL,
    published_at BIGINT       NOT NULL,
    title        VARCHAR(200) NOT NULL,
    PRIMARY KEY (article_id, feed_kind, feed_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- `label` is the feed's name (the tag's, for ranking tags by use).
CREATE TABLE feed_counts (
    feed_kind SMALLINT    NOT NULL,
    feed_id   BIGINT      NOT NULL,
    status    VARCHAR(16) NOT NULL,
    label     VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    articles  BIGINT      NOT NULL,
    PRIMARY KEY (feed_kind, feed_id, status),
    KEY feed_counts_ranked (feed_kind, status, articles DESC, label)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

UPDATE articles a
JOIN (
    SELECT at.article_id, GROUP_CONCAT(t.name ORDER BY t.name SEPARATOR ' ') AS names
    FROM article_tags at JOIN tags t ON t.id = at.tag_id
    GROUP BY at.article_id
) g ON g.article_id = a.id
SET a.tag_list = g.names;

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
SELECT 1, a.author_id, a.status, '', COUNT(*) FROM articles a GROUP BY a.author_id, a.status;

INSERT INTO feed_counts (feed_kind, feed_id, status, label, articles)
SELECT 2, at.tag_id, a.status, t.name, COUNT(*)
FROM article_tags at JOIN articles a ON a.id = at.article_id JOIN tags t ON t.id = at.tag_id
GROUP BY at.tag_id, t.name, a.status;

-- One index per sort, built after the backfill (sorting once is far
-- cheaper than inserting millions of rows into four random-order indexes).
ALTER TABLE feed_entries
    ADD KEY feed_entries_created (feed_kind, feed_id, status, created_at, article_id),
    ADD KEY feed_entries_updated (feed_kind, feed_id, status, updated_at, article_id),
    ADD KEY feed_entries_published (feed_kind, feed_id, status, published_at, article_id),
    ADD KEY feed_entries_title (feed_kind, feed_id, status, title, article_id);

-- The tag links now live in `feed_entries` (kind 2).
DROP TABLE article_tags;

-- Feeds serve every list now, so the lists' old indexes go.
ALTER TABLE articles
    DROP INDEX articles_status_created,
    DROP INDEX articles_status_updated,
    DROP INDEX articles_status_published,
    DROP INDEX articles_status_title,
    DROP COLUMN title_search;

-- Words compare byte for byte: the application folds case and accents.
CREATE TABLE search_terms (
    term       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    status     VARCHAR(16) NOT NULL,
    created_at BIGINT      NOT NULL,
    article_id BIGINT      NOT NULL,
    author_id  BIGINT      NOT NULL,
    PRIMARY KEY (term, status, created_at, article_id),
    KEY search_terms_article (article_id, term)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Data the application derives itself, once, after the migrations run.
CREATE TABLE backfills (
    name    VARCHAR(64) NOT NULL PRIMARY KEY,
    done_at BIGINT      NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

INSERT INTO backfills (name, done_at) VALUES ('search_terms', NULL);
