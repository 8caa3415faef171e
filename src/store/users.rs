//! Users, their sign-in sessions (refresh tokens, known clients) and roles.
//!
//! Names are looked up by their canonical key (`username_key`, see
//! [`canonical_username`]), compared byte for byte: never by `username`
//! under the database's collation, which folds differently on each backend.

use sqlx::AnyConnection;

use super::rows::UserRow;
use super::{Committed, Store, StoreError, inserted_id};
use crate::domain::time::now;
use crate::domain::{Principal, Role, User, canonical_username};

const FIND_USER: &str = "SELECT id, username, role, created_at FROM users WHERE id = ?";

/// A user, read inside a write's transaction.
async fn find_user(conn: &mut AnyConnection, id: i64) -> Result<User, StoreError> {
    let row: UserRow = sqlx::query_as(FIND_USER).bind(id).fetch_one(conn).await?;
    Ok(row.into())
}

/// A user with the password hash to check a login against.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    /// What tokens issued on this sign-in carry.
    pub token_version: i64,
}

/// What presenting a refresh token found.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Valid and now spent; a new one must be issued, at this token version.
    Accepted { user_id: i64, token_version: i64 },
    /// Spent before: the token leaked, and every session of the user must
    /// end ([`Store::end_sessions`]).
    Reused { user_id: i64 },
    /// Unknown, expired, or issued before a password reset.
    Rejected,
}

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<Committed<User>, StoreError> {
        let now = now().timestamp_millis();
        async {
            let mut conn = self.pool.acquire().await?;
            let mut tx = self.begin_write_on(&mut conn).await?;
            let result = sqlx::query(
                "INSERT INTO users \
                 (username, username_key, password_hash, role, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(username)
            .bind(canonical_username(username))
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = inserted_id(&mut tx, &result).await?;
            let user = find_user(&mut tx, id).await?;
            tx.commit().await.map_err(StoreError::at_commit)?;
            self.committed(&mut conn, user).await
        }
        .await
    }

    pub async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query_as::<_, UserRow>(FIND_USER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(User::from))
    }

    /// The user whose name has `username`'s canonical form, with what a
    /// sign-in checks.
    pub async fn find_credentials(
        &self,
        username: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        let key = canonical_username(username);
        // A row written by an older version still running beside this one
        // has no key yet: it is found by name, then kept only if its name
        // has this canonical form.
        let sql = "SELECT id, username, role, created_at, password_hash, token_version \
                   FROM users WHERE username_key = ? OR (username_key IS NULL AND username = ?)";
        let rows = sqlx::query_as::<_, UserRow>(sql)
            .bind(&key)
            .bind(&key)
            .fetch_all(&self.pool)
            .await?;
        let row = rows
            .into_iter()
            .find(|row| canonical_username(&row.username) == key);
        Ok(row.map(|mut row| Credentials {
            password_hash: row.password_hash.take().unwrap_or_default(),
            token_version: row.token_version.unwrap_or_default(),
            user: row.into(),
        }))
    }

    /// What authorization needs to know of a user, as it is now.
    pub async fn find_principal(&self, id: i64) -> Result<Option<Principal>, StoreError> {
        let row: Option<(i64, String, String, i64)> =
            sqlx::query_as("SELECT id, username, role, token_version FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, username, role, token_version)| Principal {
            id,
            username,
            // As for `User`: an unknown role gets the least power.
            role: Role::parse(&role).unwrap_or(Role::Reader),
            token_version,
        }))
    }

    /// The id of the user whose name has `username`'s canonical form.
    pub async fn find_user_id(&self, username: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .find_credentials(username)
            .await?
            .map(|credentials| credentials.user.id))
    }

    /// Gives the user `role`, unless that would leave no admin
    /// ([`StoreError::LastAdmin`]).
    pub async fn set_role(&self, id: i64, role: Role) -> Result<Committed<User>, StoreError> {
        self.change_user(id, role, None).await
    }

    /// Creates the user, or resets an existing one's password and role as
    /// [`Store::reset_user`] does. This touches no cache: anything that may
    /// run beside serving instances goes through `Writer::upsert_user`.
    pub async fn upsert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<Committed<User>, StoreError> {
        match self.create_user(username, password_hash, role).await {
            Err(StoreError::Duplicate) => {
                let id = self
                    .find_user_id(username)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                self.reset_user(id, password_hash, role).await
            }
            other => other,
        }
    }

    /// Sets a new password and role. In the same transaction the user's
    /// token version moves on and their refresh tokens and known clients
    /// go: whoever knew the old password keeps no session, not even one
    /// being issued right now (its tokens carry the old version). This is
    /// the operator's tool (`feedgate user create`), which can always make
    /// another admin: it may demote the last one.
    pub async fn reset_user(
        &self,
        id: i64,
        password_hash: &str,
        role: Role,
    ) -> Result<Committed<User>, StoreError> {
        self.change_user(id, role, Some(password_hash)).await
    }

    /// Sets the role and, with a password hash, resets as
    /// [`Store::reset_user`] says; one transaction. A new role also ends
    /// the user's refresh tokens: the access token they hold follows the
    /// new role at once, and when it expires they sign in under it.
    ///
    /// A role change alone leaves the last admin an admin
    /// ([`StoreError::LastAdmin`]). Every admin's row is locked first, in
    /// one order, then counted: of two admins demoting each other at once,
    /// the second waits for the first and then finds itself the last.
    async fn change_user(
        &self,
        id: i64,
        role: Role,
        password_hash: Option<&str>,
    ) -> Result<Committed<User>, StoreError> {
        let now = now().timestamp_millis();
        let admin = Role::Admin.as_str();
        async {
            let mut conn = self.pool.acquire().await?;
            let mut tx = self.begin_write_on(&mut conn).await?;
            let admins: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM users WHERE role = ? ORDER BY id{}",
                self.dialect.lock_rows()
            )))
            .bind(admin)
            .fetch_all(&mut *tx)
            .await?;
            let current: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT role FROM users WHERE id = ?{}",
                self.dialect.lock_rows()
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let current = current.ok_or(StoreError::NotFound)?;
            let demotes_the_last = current == admin && role != Role::Admin && admins == [id];
            if demotes_the_last && password_hash.is_none() {
                return Err(StoreError::LastAdmin);
            }
            sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
                .bind(role.as_str())
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if password_hash.is_some() || current != role.as_str() {
                sqlx::query("DELETE FROM refresh_tokens WHERE user_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(hash) = password_hash {
                sqlx::query(
                    "UPDATE users SET password_hash = ?, token_version = token_version + 1 \
                     WHERE id = ?",
                )
                .bind(hash)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM known_clients WHERE user_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let user = find_user(&mut tx, id).await?;
            tx.commit().await.map_err(StoreError::at_commit)?;
            self.committed(&mut conn, user).await
        }
        .await
    }

    /// Ends every session of the user: their token version moves on (so
    /// every access token issued before is refused) and their refresh
    /// tokens go, in one transaction. What a reused refresh token calls for.
    pub async fn end_sessions(&self, user_id: i64) -> Result<Committed<()>, StoreError> {
        async {
            let mut conn = self.pool.acquire().await?;
            let mut tx = self.begin_write_on(&mut conn).await?;
            sqlx::query("UPDATE users SET token_version = token_version + 1 WHERE id = ?")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM refresh_tokens WHERE user_id = ?")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await.map_err(StoreError::at_commit)?;
            self.committed(&mut conn, ()).await
        }
        .await
    }

    /// Stores a refresh token issued at the user's `token_version`.
    pub async fn insert_refresh_token(
        &self,
        user_id: i64,
        token_hash: &str,
        ttl_secs: u64,
        token_version: i64,
    ) -> Result<(), StoreError> {
        let session = Session {
            user_id,
            refresh_hash: token_hash,
            ttl_secs,
            token_version,
            client: None,
        };
        self.open_session(&session).await
    }

    /// Stores a session's refresh token and, for a sign-in from a known
    /// address, remembers that client for as long as the token lives (see
    /// [`Store::is_known_client`]); one transaction.
    pub async fn open_session(&self, session: &Session<'_>) -> Result<(), StoreError> {
        let now = now().timestamp_millis();
        let ttl_ms = i64::try_from(session.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        async {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO refresh_tokens \
                 (user_id, token_hash, expires_at, created_at, token_version) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(session.user_id)
            .bind(session.refresh_hash)
            .bind(now.saturating_add(ttl_ms))
            .bind(now)
            .bind(session.token_version)
            .execute(&mut *tx)
            .await?;
            if let Some(client) = session.client {
                sqlx::query("DELETE FROM known_clients WHERE user_id = ? AND seen_at < ?")
                    .bind(session.user_id)
                    .bind(now.saturating_sub(ttl_ms))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{} INTO known_clients (user_id, client, seen_at) VALUES (?, ?, ?)",
                    self.dialect.insert_ignore()
                )))
                .bind(session.user_id)
                .bind(client)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE known_clients SET seen_at = ? WHERE user_id = ? AND client = ?",
                )
                .bind(now)
                .bind(session.user_id)
                .bind(client)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await
    }

    /// Whether the user signed in from `client` (a key made by the caller)
    /// within `within_secs`.
    pub async fn is_known_client(
        &self,
        user_id: i64,
        client: &str,
        within_secs: u64,
    ) -> Result<bool, StoreError> {
        let within_ms = i64::try_from(within_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let since = now().timestamp_millis().saturating_sub(within_ms);
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT seen_at FROM known_clients WHERE user_id = ? AND client = ? AND seen_at >= ?",
        )
        .bind(user_id)
        .bind(client)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Spends a refresh token. Spending is one atomic update, so two
    /// concurrent uses of one token cannot both succeed. The token's
    /// version and the user's are read in one statement: a token issued
    /// before a password reset is refused even if it outlived the reset's
    /// deletion (a sign-in that was verifying the old password meanwhile).
    pub async fn consume_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<RefreshOutcome, StoreError> {
        let now = now().timestamp_millis();
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = ? \
             WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row: Option<(i64, Option<i64>, i64, i64)> = sqlx::query_as(
            "SELECT r.user_id, r.used_at, r.token_version, u.token_version \
             FROM refresh_tokens r JOIN users u ON u.id = r.user_id \
             WHERE r.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            // From before a reset: dead, and no reason to end newer sessions.
            Some((_, _, issued_at, current)) if issued_at != current => RefreshOutcome::Rejected,
            Some((user_id, _, token_version, _)) if spent.rows_affected() == 1 => {
                RefreshOutcome::Accepted {
                    user_id,
                    token_version,
                }
            }
            Some((user_id, Some(_), _, _)) => RefreshOutcome::Reused { user_id },
            _ => RefreshOutcome::Rejected,
        })
    }

    /// Gives every user without a canonical key one: rows from before keys
    /// existed, or written by an older version running beside this one.
    /// Two old rows with one canonical form (possible where the old
    /// comparison was narrower, as SQLite's ASCII-only NOCASE) cannot both
    /// have it: the older account keeps it, the other is left without a key
    /// (it cannot sign in) and a warning names both.
    pub(super) async fn fill_username_keys(&self) -> Result<(), StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, username FROM users WHERE username_key IS NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        for (id, username) in rows {
            let key = canonical_username(&username);
            let filled = sqlx::query("UPDATE users SET username_key = ? WHERE id = ?")
                .bind(&key)
                .bind(id)
                .execute(&self.pool)
                .await;
            match filled.map_err(StoreError::from) {
                Ok(_) => {}
                Err(StoreError::Duplicate) => {
                    let holder: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM users WHERE username_key = ?")
                            .bind(&key)
                            .fetch_optional(&self.pool)
                            .await?;
                    tracing::warn!(
                        user = id,
                        %username,
                        same_as = ?holder,
                        "two accounts have one canonical username: this one cannot sign in \
                         until it is renamed"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// A session being opened: its refresh token and where it was opened from.
pub struct Session<'a> {
    pub user_id: i64,
    /// The refresh token's SHA-256 (see `auth::RefreshToken`).
    pub refresh_hash: &'a str,
    pub ttl_secs: u64,
    pub token_version: i64,
    /// The client's key, to remember it by; `None` for no known address.
    pub client: Option<&'a str>,
}
