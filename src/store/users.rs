use sqlx::AnyConnection;

use super::rows::UserRow;
use super::{Committed, Store, StoreError, inserted_id};
use crate::domain::time::now;
use crate::domain::{Principal, Role, User};

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
    /// Spent before: the token leaked, so every token of the user was revoked.
    Reused,
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
        self.retrying(|| async {
            let mut conn = self.pool.acquire().await?;
            let mut tx = self.begin_write_on(&mut conn).await?;
            let result = sqlx::query(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = inserted_id(&mut tx, &result).await?;
            let user = find_user(&mut tx, id).await?;
            tx.commit().await?;
            self.committed(&mut conn, user).await
        })
        .await
    }

    pub async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query_as::<_, UserRow>(FIND_USER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(User::from))
    }

    pub async fn find_credentials(
        &self,
        username: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        let sql = "SELECT id, username, role, created_at, password_hash, token_version \
                   FROM users WHERE username = ?";
        let row = sqlx::query_as::<_, UserRow>(sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
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

    pub async fn find_user_id(&self, username: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

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
    /// token version moves on and their refresh tokens go: whoever knew the
    /// old password keeps no session, not even one being issued right now
    /// (its tokens carry the old version).
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
    async fn change_user(
        &self,
        id: i64,
        role: Role,
        password_hash: Option<&str>,
    ) -> Result<Committed<User>, StoreError> {
        let now = now().timestamp_millis();
        self.retrying(|| async {
            let mut conn = self.pool.acquire().await?;
            let mut tx = self.begin_write_on(&mut conn).await?;
            let current: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT role FROM users WHERE id = ?{}",
                self.dialect.lock_rows()
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let current = current.ok_or(StoreError::NotFound)?;
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
            }
            let user = find_user(&mut tx, id).await?;
            tx.commit().await?;
            self.committed(&mut conn, user).await
        })
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
        let now = now().timestamp_millis();
        let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO refresh_tokens \
             (user_id, token_hash, expires_at, created_at, token_version) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .bind(token_version)
        .execute(&self.pool)
        .await?;
        Ok(())
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
            Some((user_id, Some(_), _, _)) => {
                self.revoke_refresh_tokens(user_id).await?;
                RefreshOutcome::Reused
            }
            _ => RefreshOutcome::Rejected,
        })
    }

    pub async fn revoke_refresh_tokens(&self, user_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
