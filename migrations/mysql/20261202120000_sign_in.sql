-- Usernames compare in one canonical form (Unicode NFKC, without invisible
-- characters, trimmed, lower-cased), computed by the application and
-- compared byte for byte: `username`'s collation folds more than case (so
-- `bf3 ` and fullwidth `ｂｆ３` matched `bf3`), and SQLite's NOCASE less.
-- Rows from before are given their key when the service starts.
ALTER TABLE users
    ADD COLUMN username_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
CREATE UNIQUE INDEX users_username_key ON users (username_key);

-- A role change locks every admin's row to count them (the last admin
-- stays an admin); this finds them without scanning every user.
CREATE INDEX users_role ON users (role);

-- Client addresses (hashed) each user signed in from, kept as long as a
-- refresh token lives: once a username's shared sign-in budget is spent,
-- only these clients may still try its password.
CREATE TABLE known_clients (
    user_id BIGINT   NOT NULL,
    client  CHAR(64) NOT NULL,
    seen_at BIGINT   NOT NULL,
    PRIMARY KEY (user_id, client),
    CONSTRAINT known_clients_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
