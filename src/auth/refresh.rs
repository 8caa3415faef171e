use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// An opaque, random refresh token. Only its SHA-256 is stored, so a leaked
/// database does not leak usable tokens.
pub struct RefreshToken {
    pub token: String,
    pub hash: String,
}

impl RefreshToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        Self {
            hash: Self::hash_of(&token),
            token,
        }
    }

    pub fn hash_of(token: &str) -> String {
        let digest = Sha256::digest(token.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hashes_are_hex_sha256() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash.len(), 64);
        assert_eq!(RefreshToken::hash_of(&a.token), a.hash);
    }
}
