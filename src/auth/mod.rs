//! Who is calling: password hashing, access tokens (JWT) and refresh tokens.

mod jwt;
mod password;
mod refresh;

pub use jwt::Claims;
pub use password::{Busy, HashPool, Passwords, Reservation};
pub use refresh::RefreshToken;

use crate::config::AuthSettings;
use crate::domain::User;

/// Why a bearer token was refused. Deliberately vague towards the client.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is invalid")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
}

/// Issues and checks credentials; one per process.
pub struct Auth {
    jwt: jwt::Keys,
    pub passwords: Passwords,
    access_ttl_secs: u64,
    refresh_ttl_secs: u64,
}

impl Auth {
    /// With no configured secret (only allowed on SQLite) a random key is
    /// made, so tokens do not outlive the process.
    pub fn new(settings: &AuthSettings) -> Self {
        let secret = settings.jwt_secret.expose();
        let jwt = if secret.is_empty() {
            tracing::warn!("FEEDGATE_JWT_SECRET is not set: using a random key for this process");
            jwt::Keys::random()
        } else {
            jwt::Keys::new(secret.as_bytes())
        };
        Self {
            jwt,
            passwords: Passwords::new(
                settings.argon2_memory_kib,
                settings.argon2_iterations,
                HashPool {
                    concurrency: settings.hash_concurrency,
                    queue: settings.hash_queue,
                },
            ),
            access_ttl_secs: settings.access_token_ttl_secs,
            refresh_ttl_secs: settings.refresh_token_ttl_secs,
        }
    }

    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    pub fn refresh_ttl_secs(&self) -> u64 {
        self.refresh_ttl_secs
    }

    /// An access token for `user` at their current `token_version`.
    pub fn issue_access_token(&self, user: &User, token_version: i64) -> String {
        self.jwt.issue(user, token_version, self.access_ttl_secs)
    }

    pub fn verify_access_token(&self, token: &str) -> Result<Claims, TokenError> {
        self.jwt.verify(token)
    }
}
