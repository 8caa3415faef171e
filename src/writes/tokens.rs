//! Sessions: what the token endpoint writes. A password grant takes the
//! username's sign-in budgets, checks the password and opens a session; a
//! refresh grant spends its token and opens the next session, or, for a
//! token spent before (it leaked), ends every session of the user on every
//! instance, access tokens included. Each grant is one call returning one
//! error type.

use std::net::IpAddr;

use super::Writer;
use super::retry::retrying;
use crate::auth::{Auth, Busy, RefreshToken};
use crate::cache::Family;
use crate::domain::User;
use crate::ratelimit::{Decision, RateLimiter, SignInBudget, client_key};
use crate::store::{RefreshOutcome, Session, StoreError};

/// A password grant: who signs in, and from which client address (`None`
/// for requests without one).
pub struct PasswordGrant<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub client: Option<IpAddr>,
}

/// A new session's tokens.
pub struct IssuedTokens {
    pub access_token: String,
    /// Single use; only its hash is stored.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Why no tokens were issued.
#[derive(Debug, thiserror::Error)]
pub enum TokenGrantError {
    /// Unknown user or wrong password: the same answer for both.
    #[error("invalid username or password")]
    BadCredentials,
    /// A sign-in budget of the username is spent; the password was not
    /// checked.
    #[error("too many sign-in attempts")]
    Limited(Decision),
    /// Every hashing place was taken; no budget was spent.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The refresh token was spent before: every session of the user ended.
    #[error("this refresh token was already used; every session of the account has ended")]
    Reused,
    #[error("the refresh token is invalid, expired, or from before a password reset")]
    BadRefreshToken,
    #[error("the account no longer exists")]
    AccountGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Writer {
    /// The password grant. A hashing place is taken first, so a sign-in
    /// turned away busy has spent no budget; then the client's own budget
    /// for the username, then the username's shared one (see
    /// [`SignInBudget`]: once it is spent, only a known client's password
    /// is checked). A success makes the client known for as long as its
    /// refresh token lives.
    pub async fn sign_in(
        &self,
        auth: &Auth,
        limiter: Option<&RateLimiter>,
        grant: PasswordGrant<'_>,
    ) -> Result<IssuedTokens, TokenGrantError> {
        let slot = auth.passwords.reserve()?;
        let budget = match limiter {
            Some(limiter) => limiter.sign_in(grant.username, grant.client).await,
            None => SignInBudget::Open,
        };
        if let SignInBudget::ClientSpent(decision) = budget {
            return Err(TokenGrantError::Limited(decision));
        }
        let credentials = self.store.find_credentials(grant.username).await?;
        let client = grant.client.map(client_key);
        if let SignInBudget::UsernameSpent(decision) = budget {
            let known = match (&credentials, &client) {
                (Some(found), Some(client)) => {
                    self.store
                        .is_known_client(found.user.id, client, auth.refresh_ttl_secs())
                        .await?
                }
                _ => false,
            };
            if !known {
                return Err(TokenGrantError::Limited(decision));
            }
        }
        let hash = credentials.as_ref().map(|c| c.password_hash.as_str());
        let valid = slot.verify(grant.password, hash).await?;
        match credentials {
            Some(found) if valid => {
                self.open_session(auth, &found.user, found.token_version, client.as_deref())
                    .await
            }
            _ => Err(TokenGrantError::BadCredentials),
        }
    }

    /// The refresh grant: single use. A token spent before means it leaked:
    /// the user's token version moves on and their refresh tokens go, and
    /// every instance learns it as after a password reset, so the access
    /// tokens issued before are refused on their next use too.
    pub async fn refresh(
        &self,
        auth: &Auth,
        refresh_token: &str,
    ) -> Result<IssuedTokens, TokenGrantError> {
        let hash = RefreshToken::hash_of(refresh_token);
        match self.store.consume_refresh_token(&hash).await? {
            RefreshOutcome::Accepted {
                user_id,
                token_version,
            } => {
                let user = self
                    .store
                    .find_user(user_id)
                    .await?
                    .ok_or(TokenGrantError::AccountGone)?;
                self.open_session(auth, &user, token_version, None).await
            }
            RefreshOutcome::Reused { user_id } => {
                self.around(
                    &[Family::User(user_id)],
                    retrying(false, || self.store.end_sessions(user_id)),
                )
                .await?;
                Err(TokenGrantError::Reused)
            }
            RefreshOutcome::Rejected => Err(TokenGrantError::BadRefreshToken),
        }
    }

    /// A token pair at `token_version`, as read with the credentials or the
    /// refresh token: if a password reset has moved the user on since, both
    /// tokens are refused at their first use.
    async fn open_session(
        &self,
        auth: &Auth,
        user: &User,
        token_version: i64,
        client: Option<&str>,
    ) -> Result<IssuedTokens, TokenGrantError> {
        let refresh = RefreshToken::generate();
        let session = Session {
            user_id: user.id,
            refresh_hash: &refresh.hash,
            ttl_secs: auth.refresh_ttl_secs(),
            token_version,
            client,
        };
        retrying(false, || self.store.open_session(&session)).await?;
        Ok(IssuedTokens {
            access_token: auth.issue_access_token(user, token_version),
            refresh_token: refresh.token,
            expires_in: auth.access_ttl_secs(),
        })
    }
}
