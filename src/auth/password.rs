use std::sync::{Arc, OnceLock};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// Argon2id hashing, run off the async threads: each hash takes tens of
/// milliseconds and megabytes of memory on purpose.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A real hash checked when the user does not exist, so a failed login
    /// takes as long for an unknown user as for a wrong password.
    decoy: Arc<OnceLock<String>>,
}

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32) -> Self {
        let params = Params::new(
            memory_kib.max(Params::MIN_M_COST),
            iterations.max(Params::MIN_T_COST),
            1,
            None,
        )
        .expect("clamped argon2 parameters are valid");
        Self {
            params,
            decoy: Default::default(),
        }
    }

    fn hasher(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$...`) with a fresh random salt.
    pub async fn hash(&self, password: &str) -> String {
        let this = self.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || this.hash_blocking(&password))
            .await
            .expect("password hashing does not panic")
    }

    pub fn hash_blocking(&self, password: &str) -> String {
        self.hasher()
            .hash_password(password.as_bytes())
            .expect("argon2 accepts any password up to 4 GiB")
            .to_string()
    }

    /// Whether `password` matches `hash`. With no hash (unknown user) a decoy
    /// is checked anyway and the answer is always no.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let this = self.clone();
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        tokio::task::spawn_blocking(move || match hash {
            Some(hash) => this
                .hasher()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok(),
            None => {
                let _ = this
                    .hasher()
                    .verify_password(password.as_bytes(), this.decoy_hash());
                false
            }
        })
        .await
        .unwrap_or(false)
    }

    fn decoy_hash(&self) -> &str {
        self.decoy
            .get_or_init(|| self.hash_blocking("decoy password that nobody has"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let passwords = Passwords::new(1024, 1);
        let hash = passwords.hash("correct horse").await;
        assert!(hash.starts_with("$argon2id$"));
        assert!(passwords.verify("correct horse", Some(&hash)).await);
        assert!(!passwords.verify("wrong horse", Some(&hash)).await);
        assert!(
            !passwords
                .verify("correct horse", Some("not a phc string"))
                .await
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let passwords = Passwords::new(1024, 1);
        assert!(
            !passwords
                .verify("decoy password that nobody has", None)
                .await
        );
    }
}
