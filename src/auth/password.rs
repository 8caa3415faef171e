use std::sync::{Arc, OnceLock};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Argon2id hashing, run off the async threads: each hash takes tens of
/// milliseconds and megabytes of memory on purpose. At most `concurrency`
/// hashes run at once and `queue` more wait; beyond that a caller is turned
/// away at once ([`Busy`]), so a flood of sign-ins cannot occupy every core
/// or pile up unbounded work.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A real hash checked when the user does not exist, so a failed login
    /// takes as long for an unknown user as for a wrong password.
    decoy: Arc<OnceLock<String>>,
    /// Permits for running or waiting: `concurrency + queue`.
    admitted: Arc<Semaphore>,
    /// Permits for running: `concurrency`.
    running: Arc<Semaphore>,
}

/// Every hashing slot and queue place is taken.
#[derive(Debug, thiserror::Error)]
#[error("too many password checks are in progress; retry in a moment")]
pub struct Busy;

/// A place in the hashing pool, held until its one hash or check is done.
pub struct Reservation {
    passwords: Passwords,
    _admitted: OwnedSemaphorePermit,
}

impl Reservation {
    pub async fn hash(self, password: &str) -> Result<String, Busy> {
        let password = password.to_owned();
        self.run(move |p| p.hash_blocking(&password)).await
    }

    pub async fn verify(self, password: &str, hash: Option<&str>) -> Result<bool, Busy> {
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        self.run(move |p| p.verify_blocking(&password, hash.as_deref()))
            .await
    }

    /// Waits for a running slot, then works on the blocking pool.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&Passwords) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let _running = self.passwords.running.acquire().await.map_err(|_| Busy)?;
        let passwords = self.passwords.clone();
        tokio::task::spawn_blocking(move || work(&passwords))
            .await
            .map_err(|_| Busy)
    }
}

/// The pool's size: how many hashes run at once and how many may wait.
#[derive(Debug, Clone, Copy)]
pub struct HashPool {
    pub concurrency: usize,
    pub queue: usize,
}

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32, pool: HashPool) -> Self {
        let params = Params::new(
            memory_kib.max(Params::MIN_M_COST),
            iterations.max(Params::MIN_T_COST),
            1,
            None,
        )
        .expect("clamped argon2 parameters are valid");
        let concurrency = pool.concurrency.max(1);
        Self {
            params,
            decoy: Default::default(),
            admitted: Arc::new(Semaphore::new(concurrency + pool.queue)),
            running: Arc::new(Semaphore::new(concurrency)),
        }
    }

    fn hasher(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Takes a place in the pool (running or queued), or refuses at once.
    /// Taking it before other work (the user lookup of a sign-in) lets a
    /// flood be turned away before it costs anything.
    pub fn reserve(&self) -> Result<Reservation, Busy> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        Ok(Reservation {
            passwords: self.clone(),
            _admitted: admitted,
        })
    }

    /// A PHC string (`$argon2id$v=19$...`) with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String, Busy> {
        self.reserve()?.hash(password).await
    }

    pub fn hash_blocking(&self, password: &str) -> String {
        self.hasher()
            .hash_password(password.as_bytes())
            .expect("argon2 accepts any password up to 4 GiB")
            .to_string()
    }

    /// Whether `password` matches `hash`. With no hash (unknown user) a decoy
    /// is checked anyway and the answer is always no.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, Busy> {
        self.reserve()?.verify(password, hash).await
    }

    fn verify_blocking(&self, password: &str, hash: Option<&str>) -> bool {
        match hash {
            Some(hash) => self
                .hasher()
                .verify_password(password.as_bytes(), hash)
                .is_ok(),
            None => {
                let _ = self
                    .hasher()
                    .verify_password(password.as_bytes(), self.decoy_hash());
                false
            }
        }
    }

    fn decoy_hash(&self) -> &str {
        self.decoy
            .get_or_init(|| self.hash_blocking("decoy password that nobody has"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passwords(concurrency: usize, queue: usize) -> Passwords {
        Passwords::new(1024, 1, HashPool { concurrency, queue })
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let passwords = passwords(1, 0);
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            passwords
                .verify("correct horse", Some(&hash))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(
            !passwords
                .verify("correct horse", Some("not a phc string"))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let passwords = passwords(1, 0);
        assert!(
            !passwords
                .verify("decoy password that nobody has", None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn beyond_the_slots_and_the_queue_callers_are_turned_away_at_once() {
        let passwords = passwords(1, 1);
        let hold = |p: &Passwords| {
            let p = p.clone();
            tokio::spawn(async move {
                let slot = p.reserve()?;
                slot.run(|_| std::thread::sleep(std::time::Duration::from_millis(300)))
                    .await
            })
        };
        let running = hold(&passwords);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let queued = hold(&passwords);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        assert!(passwords.hash("x").await.is_err());
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        assert!(running.await.unwrap().is_ok() && queued.await.unwrap().is_ok());
        assert!(passwords.hash("x").await.is_ok(), "free again");
    }
}
