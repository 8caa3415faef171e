-- Feeds that stay fast at any size and reads that see one version; see the
-- MySQL migration of the same name for the design. SQLite differences: the
-- title index for `q` is an FTS5 table kept by triggers.

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

-- Words are runs of letters, digits and underscores (as MariaDB's
-- full-text parser sees them), compared without case or accents.
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, content = 'articles', content_rowid = 'id',
    tokenize = "unicode61 remove_diacritics 2 tokenchars '_'"
);
INSERT INTO articles_fts (articles_fts) VALUES ('rebuild');
CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title) VALUES (new.id, new.title);
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title) VALUES ('delete', old.id, old.title);
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF title ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title) VALUES ('delete', old.id, old.title);
    INSERT INTO articles_fts (rowid, title) VALUES (new.id, new.title);
END;
