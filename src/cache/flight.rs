//! Single flight: concurrent misses on one key make one load, and every
//! caller gets its outcome.
//!
//! A flight lives only while it loads; the first caller to see it finish
//! retires it, so a later miss (or a retry after a write overtook the load)
//! starts afresh. If the caller running the load goes away (its request
//! timed out or the client left), a waiting caller takes the load over.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use compact_str::CompactString;
use tokio::sync::OnceCell;

use super::l1::Cached;
use crate::store::StoreError;

/// A load's outcome, shared by every caller of its flight.
pub type Outcome = Result<Arc<Cached>, Arc<StoreError>>;

#[derive(Default)]
pub struct Flights {
    running: Mutex<HashMap<CompactString, Arc<OnceCell<Outcome>>>>,
}

impl Flights {
    /// Runs `load` for `name`, or waits for the load of `name` already
    /// running; also says whether this caller ran it.
    pub async fn run<F, Fut>(&self, name: &CompactString, load: F) -> (Outcome, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let flight = self
            .running
            .lock()
            .expect("not poisoned")
            .entry(name.clone())
            .or_default()
            .clone();
        let ran = AtomicBool::new(false);
        let outcome = flight
            .get_or_init(|| {
                ran.store(true, Ordering::Relaxed);
                load()
            })
            .await
            .clone();
        let mut running = self.running.lock().expect("not poisoned");
        if running
            .get(name)
            .is_some_and(|current| Arc::ptr_eq(current, &flight))
        {
            running.remove(name);
        }
        (outcome, ran.load(Ordering::Relaxed))
    }
}
