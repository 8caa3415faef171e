use sqlx::AnyConnection;

use super::rows::UserRow;
use super::{Store, StoreError, inserted_id};
use crate::domain::time::now;
use crate::domain::{Role, User};

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
}

/// What presenting a refresh token found.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Valid and now spent; a new one must be issued.
    Accepted { user_id: i64 },
    /// Spent before: the token leaked, so every token of the user was revoked.
    Reused,
    /// Unknown or expired.
    Rejected,
}

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let now = now().timestamp_millis();
        self.retrying(|| async {
            let mut tx = self.begin_write().await?;
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
            Ok(user)
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
        let sql =
            "SELECT id, username, role, created_at, password_hash FROM users WHERE username = ?";
        let row = sqlx::query_as::<_, UserRow>(sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|mut row| Credentials {
            password_hash: row.password_hash.take().unwrap_or_default(),
            user: row.into(),
        }))
    }

    pub async fn set_role(&self, id: i64, role: Role) -> Result<User, StoreError> {
        let now = now().timestamp_millis();
        self.retrying(|| async {
            let mut tx = self.begin_write().await?;
            let result = sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
                .bind(role.as_str())
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if result.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let user = find_user(&mut tx, id).await?;
            tx.commit().await?;
            Ok(user)
        })
        .await
    }

    /// Sets a password (and role) for an existing user, or creates the user.
    /// A reset ends every refresh token of the user in the same transaction:
    /// whoever knew the old password keeps no session.
    pub async fn upsert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        match self.create_user(username, password_hash, role).await {
            Err(StoreError::Duplicate) => {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "UPDATE users SET password_hash = ?, role = ?, updated_at = ? WHERE username = ?",
                )
                .bind(password_hash)
                .bind(role.as_str())
                .bind(now().timestamp_millis())
                .bind(username)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "DELETE FROM refresh_tokens \
                     WHERE user_id IN (SELECT id FROM users WHERE username = ?)",
                )
                .bind(username)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                let credentials = self.find_credentials(username).await?;
                credentials.map(|c| c.user).ok_or(StoreError::NotFound)
            }
            other => other,
        }
    }

    pub async fn insert_refresh_token(
        &self,
        user_id: i64,
        token_hash: &str,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let now = now().timestamp_millis();
        let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO refresh_tokens (user_id, token_hash, expires_at, created_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends a refresh token. Spending is one atomic update, so two
    /// concurrent uses of one token cannot both succeed.
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
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT user_id, used_at FROM refresh_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some((user_id, _)) if spent.rows_affected() == 1 => {
                RefreshOutcome::Accepted { user_id }
            }
            Some((user_id, Some(_))) => {
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
