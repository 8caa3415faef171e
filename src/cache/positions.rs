//! The highest commit position this instance has heard of: its own writes'
//! and those announced on the invalidation channel (and the primary's at
//! start). A fill on a replica waits for it, so no fill stores a version
//! older than a write this instance could know of.
//!
//! Ordering is what makes it a fence: a write's position is noted *before*
//! the generation bump that announces it (here, in Redis, and in the
//! message), and a load reads the position *after* it takes its stamp (and
//! Redis' position after Redis' generations). So a load whose stamp already
//! shows a write's bump also knows the write's position, and a load whose
//! stamp does not is fenced by the bump anyway.

use std::sync::Mutex;

use crate::store::Position;

#[derive(Default)]
pub struct Positions(Mutex<Position>);

impl Positions {
    /// Moves the highest position heard forward to include `position`.
    pub fn note(&self, position: &Position) {
        self.0.lock().expect("not poisoned").merge(position);
    }

    pub fn highest(&self) -> Position {
        self.0.lock().expect("not poisoned").clone()
    }
}
