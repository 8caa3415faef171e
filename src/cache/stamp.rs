//! Generations: the fence that keeps stale data out of the local cache.
//!
//! Every family hashes to one of a fixed number of slots, each a counter.
//! A write bumps its families' slots (before and after it commits); a
//! reader records the slots of its key's families *before* it loads, and an
//! entry is only served while its recorded stamp still equals the current
//! one. A load that read the old row before a write therefore never serves
//! anyone once the write's bump has happened, whenever its fill lands.
//! Collisions between families only cause extra misses, never stale hits.
//! The epoch invalidates everything at once (after a lost Redis connection).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use super::key::MAX_FAMILIES;

const SLOTS: usize = 1 << 16;

pub struct Generations {
    slots: Box<[AtomicU64]>,
    epoch: AtomicU64,
}

/// The generations a cached response was loaded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    epoch: u64,
    values: [u64; MAX_FAMILIES],
}

impl Default for Generations {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
        }
    }
}

impl Generations {
    fn slot(&self, family: &str) -> &AtomicU64 {
        // Deterministic on purpose: a crafted collision only costs misses.
        let mut hasher = DefaultHasher::new();
        family.hash(&mut hasher);
        &self.slots[hasher.finish() as usize % SLOTS]
    }

    pub fn stamp(&self, families: &[String]) -> Stamp {
        let mut values = [0; MAX_FAMILIES];
        for (value, family) in values.iter_mut().zip(families) {
            *value = self.slot(family).load(Ordering::Acquire);
        }
        Stamp {
            epoch: self.epoch.load(Ordering::Acquire),
            values,
        }
    }

    pub fn bump<S: AsRef<str>>(&self, families: &[S]) {
        for family in families {
            self.slot(family.as_ref()).fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Makes every stamp taken so far stale.
    pub fn bump_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_bump_changes_the_stamps_of_its_family_only() {
        let generations = Generations::default();
        let a = families(&["a:1"]);
        let b = families(&["a:2"]);
        let (before_a, before_b) = (generations.stamp(&a), generations.stamp(&b));
        generations.bump(&a);
        assert_ne!(generations.stamp(&a), before_a);
        assert_eq!(generations.stamp(&b), before_b);
    }

    #[test]
    fn the_epoch_changes_every_stamp() {
        let generations = Generations::default();
        let key = families(&["u:ada", "t:rust"]);
        let before = generations.stamp(&key);
        generations.bump_epoch();
        assert_ne!(generations.stamp(&key), before);
    }
}
