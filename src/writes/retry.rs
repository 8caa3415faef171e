//! The one retry policy of writes. A write is made again, whole (read,
//! checks, transaction), when it lost a race it did not choose: the
//! database rolled it back to break a deadlock or a lock wait, or (only
//! for a write without a precondition) another write of the same article
//! landed between its read and its own. One budget covers both, with
//! random pauses whose range doubles, so writers that keep colliding
//! spread out; past it, the last error stands.

use std::time::Duration;

use super::WriteError;
use crate::store::StoreError;

/// Attempts of one write, in all.
pub const ATTEMPTS: u32 = 8;

/// The longest pause between attempts.
const MAX_PAUSE_MS: u64 = 64;

/// Runs `attempt` until it succeeds, fails for good, or the budget is
/// spent. `overtaken` says whether losing to a concurrent write of the same
/// row ([`StoreError::Stale`]) may be retried.
pub async fn retrying<T, F, Fut>(overtaken: bool, mut attempt: F) -> Result<T, WriteError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, WriteError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(WriteError::Store(StoreError::Contended)) if tries < ATTEMPTS => {}
            Err(WriteError::Store(StoreError::Stale)) if overtaken && tries < ATTEMPTS => {}
            other => return other,
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
        let result: Result<(), _> = retrying(false, || async {
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
                    0 | 1 => Err(WriteError::Store(StoreError::Stale)),
                    _ => Ok(()),
                }
            })
            .await;
            assert_eq!(calls.load(Ordering::Relaxed), expected);
            assert_eq!(result.is_ok(), overtaken);
        }
    }
}
