use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::TokenError;
use crate::domain::{Role, User};

const ISSUER: &str = "feedgate";
/// Seconds of clock skew tolerated between instances.
const LEEWAY_SECS: u64 = 5;

/// What an access token asserts. Who the user is and what they may do are
/// read from their record on each request (see `http::extract`); the token
/// only names the user and the token version it was issued at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string per RFC 7519.
    pub sub: String,
    /// The username and role at issue, for clients to show; authorization
    /// never reads them.
    pub name: String,
    pub role: Role,
    /// The user's token version at issue; a password reset (or a reused
    /// refresh token) raises the user's, ending the token. Required: every
    /// token issued since versions exist has one, and the access tokens
    /// from before expired long ago.
    pub ver: i64,
    pub iss: String,
    /// Issued at; required, and not in the future (beyond the clock skew
    /// tolerated), as `nbf` if present.
    pub iat: u64,
    pub exp: u64,
    /// Unique per token, so two tokens issued in one second differ.
    pub jti: String,
}

impl Claims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

pub(super) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    pub(super) fn new(secret: &[u8]) -> Self {
        // Only HS256 is accepted: a token naming another algorithm (or "none")
        // fails validation before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub(super) fn random() -> Self {
        let mut secret = [0u8; 48];
        rand::rng().fill_bytes(&mut secret);
        Self::new(&secret)
    }

    pub(super) fn issue(&self, user: &User, token_version: i64, ttl_secs: u64) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            name: user.username.clone(),
            role: user.role,
            ver: token_version,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl_secs,
            jti: format!("{:032x}", rand::random::<u128>()),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// The token's claims if it is ours and current: HS256 with our key,
    /// our issuer, a subject, a token version, not expired, and neither
    /// issued (`iat`) nor valid from (`nbf`) later than now, give or take
    /// the clock skew tolerated. A token from the future was not issued by
    /// a clock we trust.
    pub(super) fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if claims.iat > jsonwebtoken::get_current_timestamp() + LEEWAY_SECS {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::domain::time::now;

    fn user() -> User {
        User {
            id: 7,
            username: "ada".into(),
            role: Role::Author,
            created_at: now(),
        }
    }

    #[test]
    fn a_token_round_trips() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let claims = keys.verify(&keys.issue(&user(), 3, 60)).unwrap();
        assert_eq!(claims.user_id(), Some(7));
        assert_eq!(claims.role, Role::Author);
        assert_eq!(claims.ver, 3);
    }

    #[test]
    fn a_token_signed_with_another_key_is_invalid() {
        let mine = Keys::new(b"0123456789abcdef0123456789abcdef");
        let theirs = Keys::new(b"fedcba9876543210fedcba9876543210");
        assert!(matches!(
            mine.verify(&theirs.issue(&user(), 0, 60)),
            Err(TokenError::Invalid)
        ));
    }

    #[test]
    fn an_unsigned_alg_none_token_is_invalid() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let signed = keys.issue(&user(), 0, 60);
        let payload = signed.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let forged = format!("{header}.{payload}.");
        assert!(matches!(keys.verify(&forged), Err(TokenError::Invalid)));
    }

    #[test]
    fn an_expired_token_says_so() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: "7".into(),
            name: "ada".into(),
            role: Role::Admin,
            ver: 0,
            iss: ISSUER.into(),
            iat: now - 600,
            exp: now - 300,
            jti: "x".into(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(matches!(keys.verify(&token), Err(TokenError::Expired)));
    }

    #[test]
    fn a_token_without_a_version_or_from_the_future_is_invalid() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let now = jsonwebtoken::get_current_timestamp();
        let token = |changes: serde_json::Value| {
            let mut claims = serde_json::json!({
                "sub": "7", "name": "ada", "role": "author", "iss": ISSUER, "ver": 2,
                "iat": now, "exp": now + 60, "jti": "x",
            });
            for (name, value) in changes.as_object().unwrap() {
                match value {
                    serde_json::Value::Null => claims.as_object_mut().unwrap().remove(name),
                    value => claims
                        .as_object_mut()
                        .unwrap()
                        .insert(name.clone(), value.clone()),
                };
            }
            encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap()
        };
        assert_eq!(keys.verify(&token(serde_json::json!({}))).unwrap().ver, 2);
        let skewed = serde_json::json!({"iat": now + LEEWAY_SECS, "nbf": now + LEEWAY_SECS});
        assert!(keys.verify(&token(skewed)).is_ok(), "within the skew");
        for invalid in [
            serde_json::json!({"ver": null}),
            serde_json::json!({"iat": null}),
            serde_json::json!({"iat": now + 60}),
            serde_json::json!({"nbf": now + 60}),
        ] {
            assert!(
                matches!(
                    keys.verify(&token(invalid.clone())),
                    Err(TokenError::Invalid)
                ),
                "{invalid}"
            );
        }
    }
}
