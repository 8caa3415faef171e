//! Generations: the fence that keeps stale data out of the local cache.
//!
//! Every family hashes to one of a fixed number of slots. A write bumps its
//! families' slots before it commits and again after; a reader records the
//! slots of its key's families *before* it loads, and an entry is served
//! only while its recorded stamp still equals the current one. A load that
//! read the old row before a write therefore never serves anyone once the
//! write's bump has happened, whenever its fill lands. Collisions between
//! families only cause extra misses, never stale hits. The epoch
//! invalidates everything at once (when invalidations may have been lost).
//!
//! Each slot counts twice: every bump, and bumps of writes that committed.
//! An entry that only failed or unfinished writes have touched still shows
//! the last committed state, so it may serve as stale-if-error while the
//! database is down.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

use super::key::Family;

const SLOTS: usize = 1 << 16;

#[derive(Default)]
struct Slot {
    every: AtomicU64,
    committed: AtomicU64,
}

pub struct Generations {
    slots: Box<[Slot]>,
    epoch: AtomicU64,
    /// Fixed keys: a crafted collision only costs misses.
    hasher: std::hash::BuildHasherDefault<std::hash::DefaultHasher>,
}

/// The generations a cached response was loaded under, one pair per family
/// of its key, in the key's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    epoch: u64,
    values: Box<[(u64, u64)]>,
}

/// Whether a bump announces a committed write or one that may not commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    /// Before a write commits, or after one that failed.
    Pending,
    /// After a write committed.
    Committed,
}

impl Bump {
    /// The bump that follows a write: `Committed` if it did.
    pub fn after(committed: bool) -> Self {
        if committed {
            Bump::Committed
        } else {
            Bump::Pending
        }
    }
}

impl Default for Generations {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            epoch: AtomicU64::new(0),
            hasher: Default::default(),
        }
    }
}

impl Generations {
    fn slot(&self, family: &Family) -> &Slot {
        let mut hasher = self.hasher.build_hasher();
        family.hash(&mut hasher);
        &self.slots[std::hash::Hasher::finish(&hasher) as usize % SLOTS]
    }

    pub fn stamp(&self, families: &[Family]) -> Stamp {
        Stamp {
            epoch: self.epoch.load(Ordering::Acquire),
            values: families
                .iter()
                .map(|family| {
                    let slot = self.slot(family);
                    (
                        slot.every.load(Ordering::Acquire),
                        slot.committed.load(Ordering::Acquire),
                    )
                })
                .collect(),
        }
    }

    /// No write of any kind since the stamp was taken.
    pub fn is_current(&self, families: &[Family], stamp: &Stamp) -> bool {
        self.matches(families, stamp, |slot| &slot.every, |(every, _)| every)
    }

    /// No committed write since the stamp was taken (failed or unfinished
    /// ones may have bumped it).
    pub fn is_committed_state(&self, families: &[Family], stamp: &Stamp) -> bool {
        self.matches(
            families,
            stamp,
            |slot| &slot.committed,
            |(_, committed)| committed,
        )
    }

    fn matches(
        &self,
        families: &[Family],
        stamp: &Stamp,
        counter: impl Fn(&Slot) -> &AtomicU64,
        recorded: impl Fn(&(u64, u64)) -> &u64,
    ) -> bool {
        stamp.epoch == self.epoch.load(Ordering::Acquire)
            && families.len() == stamp.values.len()
            && families
                .iter()
                .zip(stamp.values.iter())
                .all(|(family, value)| {
                    counter(self.slot(family)).load(Ordering::Acquire) == *recorded(value)
                })
    }

    pub fn bump<'a>(&self, families: impl IntoIterator<Item = &'a Family>, bump: Bump) {
        for family in families {
            let slot = self.slot(family);
            slot.every.fetch_add(1, Ordering::AcqRel);
            if bump == Bump::Committed {
                slot.committed.fetch_add(1, Ordering::AcqRel);
            }
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

    #[test]
    fn a_bump_changes_the_stamps_of_its_family_only() {
        let generations = Generations::default();
        let a = [Family::Article(1)];
        let b = [Family::Article(2)];
        let (stamp_a, stamp_b) = (generations.stamp(&a), generations.stamp(&b));
        generations.bump(&a, Bump::Committed);
        assert!(!generations.is_current(&a, &stamp_a));
        assert!(generations.is_current(&b, &stamp_b));
    }

    #[test]
    fn every_family_of_a_key_fences_it_however_many_it_has() {
        let generations = Generations::default();
        let key: Vec<Family> = (0..5).map(Family::Article).collect();
        let stamp = generations.stamp(&key);
        generations.bump(&[Family::Article(4)], Bump::Pending);
        assert!(!generations.is_current(&key, &stamp));
    }

    #[test]
    fn only_committed_bumps_end_the_committed_state() {
        let generations = Generations::default();
        let key = [Family::Articles, Family::Tag("rust".into())];
        let stamp = generations.stamp(&key);
        generations.bump(&key, Bump::Pending);
        assert!(!generations.is_current(&key, &stamp));
        assert!(generations.is_committed_state(&key, &stamp));
        generations.bump(&key[1..], Bump::Committed);
        assert!(!generations.is_committed_state(&key, &stamp));
    }

    #[test]
    fn the_epoch_changes_every_stamp() {
        let generations = Generations::default();
        let key = [Family::author("ada"), Family::Tag("rust".into())];
        let stamp = generations.stamp(&key);
        generations.bump_epoch();
        assert!(!generations.is_current(&key, &stamp));
        assert!(!generations.is_committed_state(&key, &stamp));
    }
}
