//! The one retry policy of writes. A write is made again, whole (read,
//! checks, transaction), when it lost a race it did not choose: the
//! database rolled it back to break a deadlock or a lock wait, or (only
//! for a write without a precondition) another write of the same article
//! landed between its read and its own. One budget covers both, with
//! random pauses whose range doubles, so writers that keep colliding
//! spread out; past it, the last error stands. A write whose connection
//! broke before it committed is made once more, at once: the pool checks
//! connections before use after one broke, so the next is a live one.

use std::time::Duration;

use super::WriteError;
use crate::store::StoreError;

/// Attempts of one write, in all.
pub const ATTEMPTS: u32 = 8;

/// The longest pause between attempts.
const MAX_PAUSE_MS: u64 = 64;

/// An error that may be the store's report of a lost race.
pub trait FromStore {
    fn store_error(&self) -> Option<&StoreError>;
}

impl FromStore for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

impl FromStore for WriteError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            WriteError::Store(err) => Some(err),
            _ => None,
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the budget is
/// spent. `overtaken` says whether losing to a concurrent write of the same
/// row ([`StoreError::Stale`]) may be retried. `attempt` must not act
/// outside its transaction, since it may run more than once.
pub async fn retrying<T, E, F, Fut>(overtaken: bool, mut attempt: F) -> Result<T, E>
where
    E: FromStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut tries = 1;
    loop {
        let result = attempt().await;
        let retry = match result.as_ref().err().and_then(FromStore::store_error) {
            Some(StoreError::Contended) => tries < ATTEMPTS,
            Some(StoreError::Stale) => overtaken && tries < ATTEMPTS,
            Some(err) if err.is_broken_connection() && tries == 1 => {
                tries += 1;
                continue;
            }
            _ => false,
        };
        if !retry {
            return result;
        }
        crate::metrics::write_retried();
        let most = (1_u64 << tries.min(6)).min(MAX_PAUSE_MS);
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..=most))).await;
        tries += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn contention_is_retried_within_the_budget_then_reported() {
        let calls = AtomicU32::new(0);
        let result: Result<(), WriteError> = retrying(false, || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(WriteError::Store(StoreError::Contended))
        })
        .await;
        assert!(matches!(
            result,
            Err(WriteError::Store(StoreError::Contended))
        ));
        assert_eq!(calls.load(Ordering::Relaxed), ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overtaken_write_is_retried_only_without_a_precondition() {
        for (overtaken, expected) in [(true, 3), (false, 1)] {
            let calls = AtomicU32::new(0);
            let result = retrying(overtaken, || async {
                match calls.fetch_add(1, Ordering::Relaxed) {
                    0 | 1 => Err(StoreError::Stale),
                    _ => Ok(()),
                }
            })
            .await;
            assert_eq!(calls.load(Ordering::Relaxed), expected);
            assert_eq!(result.is_ok(), overtaken);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_connection_is_tried_once_more_and_a_timeout_not_at_all() {
        let broken = || {
            StoreError::Unavailable(std::sync::Arc::new(sqlx::Error::Io(
                std::io::ErrorKind::ConnectionReset.into(),
            )))
        };
        for (error, expected) in [
            (broken as fn() -> StoreError, 2),
            (|| StoreError::timed_out("a read"), 1),
        ] {
            let calls = AtomicU32::new(0);
            let result: Result<(), StoreError> = retrying(false, || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(error())
            })
            .await;
            assert!(matches!(result, Err(StoreError::Unavailable(_))));
            assert_eq!(calls.load(Ordering::Relaxed), expected);
        }
    }
}
