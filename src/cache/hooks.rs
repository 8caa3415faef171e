//! Pauses that tests use to force the races the cache must survive (a fill
//! held between its database read and its cache fill, an invalidation held
//! between its local bump and Redis'), and a clock they move forward instead
//! of waiting for entries to age. Built only with the `test-hooks` feature
//! (the test suite enables it): a release build has none of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::key::{Family, Key};

/// Runs between a load's database read and its cache fill.
pub type FillHook = Arc<dyn Fn(&Key) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Runs between an invalidation's local bump and its bump in Redis.
pub type BumpHook =
    Arc<dyn Fn(&[Family]) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Default)]
pub struct Hooks {
    fill: RwLock<Option<FillHook>>,
    bump: RwLock<Option<BumpHook>>,
    skipped: Mutex<Duration>,
}

impl Hooks {
    /// Moves the cache's clock forward: entries age by `by` at once.
    pub fn advance(&self, by: Duration) {
        *self.skipped.lock().expect("not poisoned") += by;
    }

    pub(super) fn skipped(&self) -> Duration {
        *self.skipped.lock().expect("not poisoned")
    }

    pub fn set_fill(&self, hook: Option<FillHook>) {
        *self.fill.write().expect("not poisoned") = hook;
    }

    pub fn set_bump(&self, hook: Option<BumpHook>) {
        *self.bump.write().expect("not poisoned") = hook;
    }

    pub(super) async fn before_fill(&self, key: &Key) {
        let hook = self.fill.read().expect("not poisoned").clone();
        if let Some(hook) = hook {
            hook(key).await;
        }
    }

    pub(super) async fn before_shared_bump(&self, families: &[Family]) {
        let hook = self.bump.read().expect("not poisoned").clone();
        if let Some(hook) = hook {
            hook(families).await;
        }
    }
}
