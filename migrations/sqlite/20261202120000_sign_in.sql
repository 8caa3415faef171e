-- Usernames compare in one canonical form (Unicode NFKC, without invisible
-- characters, trimmed, lower-cased), computed by the application and
-- compared byte for byte: NOCASE folds ASCII letters only, and MariaDB's
-- collation far more. Rows from before are given their key when the
-- service starts.
ALTER TABLE users ADD COLUMN username_key TEXT COLLATE BINARY;
CREATE UNIQUE INDEX users_username_key ON users (username_key);

-- A role change counts the admins (the last admin stays an admin).
CREATE INDEX users_role ON users (role);

-- Client addresses (hashed) each user signed in from, kept as long as a
-- refresh token lives: once a username's shared sign-in budget is spent,
-- only these clients may still try its password.
CREATE TABLE known_clients (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client  TEXT    NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client)
);
