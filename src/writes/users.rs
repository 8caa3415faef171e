//! User writes: registration, role changes and password resets. Each is one
//! call that checks what it must, writes in one transaction and makes the
//! user's cached record stale on every instance (authorization reads the
//! role and token version from it), returning one error type.

use super::Writer;
use super::retry::retrying;
use crate::auth::{Busy, Passwords};
use crate::cache::Family;
use crate::domain::{Role, User, Username, UsernameError};
use crate::store::StoreError;

/// Why a user write did not happen; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum UserWriteError {
    /// The name cannot be registered.
    #[error("the username {0}")]
    InvalidUsername(#[from] UsernameError),
    /// Another account has the name's canonical form.
    #[error("that username is taken")]
    Taken,
    #[error("no such user")]
    NotFound,
    /// The caller may not change roles.
    #[error("only admins may change roles")]
    NotAdmin,
    /// The change would leave no admin.
    #[error("the last admin cannot stop being an admin: make another user an admin first")]
    LastAdmin,
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserWriteError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate => UserWriteError::Taken,
            StoreError::NotFound => UserWriteError::NotFound,
            StoreError::LastAdmin => UserWriteError::LastAdmin,
            other => UserWriteError::Store(other),
        }
    }
}

impl Writer {
    /// A new account with `password` hashed (in the bounded hashing pool).
    /// "No such user" may be cached for its id.
    pub async fn register_user(
        &self,
        passwords: &Passwords,
        username: &Username,
        password: &str,
        role: Role,
    ) -> Result<User, UserWriteError> {
        let hash = passwords.hash(password).await?;
        self.create_user(username, &hash, role).await
    }

    /// Gives user `id` the role `role`, if the caller (whose current role
    /// is `by`) is an admin and an admin remains. Every instance applies it
    /// to the user's next request, tokens already issued included.
    pub async fn change_role(&self, by: Role, id: i64, role: Role) -> Result<User, UserWriteError> {
        if by != Role::Admin {
            return Err(UserWriteError::NotAdmin);
        }
        let changed = self
            .around(
                &[Family::User(id)],
                retrying(false, || self.store.set_role(id, role)),
            )
            .await?;
        Ok(changed)
    }

    /// Creates a user, or resets an existing one's password and role (see
    /// [`crate::store::Store::reset_user`]; the operator's tool, so it may
    /// demote the last admin): every instance then refuses the tokens of
    /// the old password on their next use. A new name must be one that
    /// sign-up takes; an existing one is found by its canonical form.
    pub async fn upsert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, UserWriteError> {
        let Some(id) = self.store.find_user_id(username).await? else {
            let username = Username::parse(username)?;
            return self.create_user(&username, password_hash, role).await;
        };
        let reset = self
            .around(
                &[Family::User(id)],
                retrying(false, || self.store.reset_user(id, password_hash, role)),
            )
            .await?;
        Ok(reset)
    }

    async fn create_user(
        &self,
        username: &Username,
        password_hash: &str,
        role: Role,
    ) -> Result<User, UserWriteError> {
        let created = retrying(false, || {
            self.store
                .create_user(username.as_str(), password_hash, role)
        })
        .await?;
        self.committed(&[Family::User(created.value.id)], created.position.as_ref())
            .await;
        Ok(created.value)
    }
}
