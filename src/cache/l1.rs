//! The in-process tier: moka, bounded by bytes, with per-entry expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use compact_str::CompactString;
use moka::Expiry;

use super::entry::Entry;
use super::stamp::Stamp;

/// A cached response (`None`: the resource does not exist) and the
/// generations it was loaded under; without a stamp (a write landed while
/// it loaded) it is served once and never cached.
#[derive(Debug)]
pub struct Cached {
    pub entry: Option<Entry>,
    pub stamp: Option<Stamp>,
    pub loaded_at: Instant,
}

pub type L1 = moka::future::Cache<CompactString, Arc<Cached>>;

/// Found entries live for their fresh time plus the stale-if-error window;
/// "not found" answers only briefly.
struct Lifetimes {
    found: Duration,
    missing: Duration,
}

impl Expiry<CompactString, Arc<Cached>> for Lifetimes {
    fn expire_after_create(
        &self,
        _: &CompactString,
        value: &Arc<Cached>,
        _: Instant,
    ) -> Option<Duration> {
        Some(if value.entry.is_some() {
            self.found
        } else {
            self.missing
        })
    }
}

pub fn build(max_bytes: u64, found: Duration, missing: Duration) -> L1 {
    moka::future::Cache::builder()
        .max_capacity(max_bytes)
        .weigher(|key: &CompactString, value: &Arc<Cached>| {
            let bytes = key.len() + value.entry.as_ref().map_or(64, Entry::weight);
            u32::try_from(bytes).unwrap_or(u32::MAX)
        })
        .expire_after(Lifetimes { found, missing })
        .build()
}
