//! Generations: the fence that keeps stale data out of the local cache.
//!
//! Every family hashes to one of a fixed number of slots. A write bumps its
//! families' slots once it has committed, before it answers. Each bump
//! takes the next value of one clock, and a slot keeps the clock's value at
//! its last bump, so a slot tells not only *whether* it moved but *when*.
//!
//! A load reads the clock first (its [`Fence`]), then reads what it caches,
//! and only then learns every family its entry depends on: a list page
//! learns from its content which articles it shows. It is stamped with the
//! slots of all of them, and refused if any moved after the fence: a write
//! landed while it loaded, so it may hold the old state. Afterwards the
//! entry is served only while its stamp still matches, so a load that read
//! the old row before a write never serves anyone once the write's bump has
//! happened, whenever its fill lands.
//!
//! Collisions between families only cause extra misses, never stale hits;
//! with 2^20 slots (8 MiB) a write's few dozen bumps touch a cached page's
//! slots by chance about once in a thousand writes. The epoch makes
//! everything stale at once (when invalidations may have been lost).
//!
//! Only committed writes bump: until a write commits, what is cached shows
//! the committed state, which is what anyone may read before the write
//! answers; so an entry stays served (and fills succeed) while writes are in
//! flight, and one that no committed write has touched may serve as
//! stale-if-error while the database is down.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

use super::key::Family;

const SLOTS: usize = 1 << 20;

pub struct Generations {
    /// The clock at each slot's last bump.
    slots: Box<[AtomicU64]>,
    clock: AtomicU64,
    epoch: AtomicU64,
    /// Fixed keys: a crafted collision only costs misses.
    hasher: std::hash::BuildHasherDefault<std::hash::DefaultHasher>,
}

/// Read before a load: what "moved since the load began" is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    epoch: u64,
    clock: u64,
}

/// The slots of every family a cached response depends on, as they were
/// when it was stamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    epoch: u64,
    marks: Box<[(u32, u64)]>,
}

impl Default for Generations {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            clock: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            hasher: Default::default(),
        }
    }
}

impl Generations {
    fn slot_of(&self, family: &Family) -> u32 {
        let mut hasher = self.hasher.build_hasher();
        family.hash(&mut hasher);
        (std::hash::Hasher::finish(&hasher) % SLOTS as u64) as u32
    }

    fn mark(&self, slot: u32) -> u64 {
        self.slots[slot as usize].load(Ordering::Acquire)
    }

    /// Taken before a load reads anything.
    pub fn fence(&self) -> Fence {
        Fence {
            epoch: self.epoch.load(Ordering::Acquire),
            clock: self.clock.load(Ordering::Acquire),
        }
    }

    /// The stamp of a load that began at `fence` and depends on
    /// `families`; `None` if any of them was bumped since (or the epoch
    /// moved): the load may hold a state that a write has replaced.
    pub fn stamp<'a>(
        &self,
        fence: Fence,
        families: impl IntoIterator<Item = &'a Family>,
    ) -> Option<Stamp> {
        let mut slots: Vec<u32> = families.into_iter().map(|f| self.slot_of(f)).collect();
        slots.sort_unstable();
        slots.dedup();
        let marks: Box<[(u32, u64)]> = slots
            .into_iter()
            .map(|slot| (slot, self.mark(slot)))
            .collect();
        let moved = marks.iter().any(|&(_, bumped_at)| bumped_at > fence.clock);
        (!moved && self.epoch.load(Ordering::Acquire) == fence.epoch).then_some(Stamp {
            epoch: fence.epoch,
            marks,
        })
    }

    /// No write since the stamp was taken.
    pub fn is_current(&self, stamp: &Stamp) -> bool {
        stamp.epoch == self.epoch.load(Ordering::Acquire)
            && stamp
                .marks
                .iter()
                .all(|&(slot, mark)| self.mark(slot) == mark)
    }

    pub fn bump<'a>(&self, families: impl IntoIterator<Item = &'a Family>) {
        let now = self.clock.fetch_add(1, Ordering::AcqRel) + 1;
        for family in families {
            // Bumps racing on one slot may land out of order: its time only
            // moves forward.
            self.slots[self.slot_of(family) as usize].fetch_max(now, Ordering::AcqRel);
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

    fn stamp(generations: &Generations, families: &[Family]) -> Stamp {
        generations
            .stamp(generations.fence(), families)
            .expect("nothing moved")
    }

    #[test]
    fn a_bump_changes_the_stamps_of_its_family_only() {
        let generations = Generations::default();
        let a = [Family::Article(1)];
        let b = [Family::Article(2)];
        let (stamp_a, stamp_b) = (stamp(&generations, &a), stamp(&generations, &b));
        generations.bump(&a);
        assert!(!generations.is_current(&stamp_a));
        assert!(generations.is_current(&stamp_b));
    }

    #[test]
    fn every_family_of_a_key_fences_it_however_many_it_has() {
        let generations = Generations::default();
        let key: Vec<Family> = (0..50).map(Family::Article).collect();
        let stamp = stamp(&generations, &key);
        generations.bump(&[Family::Article(49)]);
        assert!(!generations.is_current(&stamp));
    }

    #[test]
    fn a_load_that_a_write_overtook_is_refused_its_stamp() {
        let generations = Generations::default();
        let fence = generations.fence();
        // The load learns it shows article 7 only after reading it; a write
        // of article 7 bumped it meanwhile.
        generations.bump(&[Family::Article(7)]);
        assert_eq!(generations.stamp(fence, &[Family::Article(7)]), None);
        assert!(generations.stamp(fence, &[Family::Article(8)]).is_some());
        // A bump from before the fence is part of what the load read.
        let fence = generations.fence();
        assert!(generations.stamp(fence, &[Family::Article(7)]).is_some());
    }

    #[test]
    fn the_epoch_changes_every_stamp_and_refuses_loads_across_it() {
        let generations = Generations::default();
        let key = [Family::Author("ada".into()), Family::Tag("rust".into())];
        let fence = generations.fence();
        let stamp = stamp(&generations, &key);
        generations.bump_epoch();
        assert!(!generations.is_current(&stamp));
        assert_eq!(generations.stamp(fence, &key), None);
    }
}
