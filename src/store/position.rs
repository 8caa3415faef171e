//! Commit positions: where in the primary's history a write committed, so
//! that a read on a replica can first wait until the replica has applied it.
//!
//! On MariaDB a position is a GTID per replication domain
//! (`domain-server-sequence`, e.g. `0-11-42`), as `@@last_gtid` gives it
//! after a commit and as `MASTER_GTID_WAIT` takes it. Within a domain the
//! sequence numbers only grow, so positions merge by keeping each domain's
//! highest, and one covers another when it is at least as far in every
//! domain of the other.

use std::fmt;
use std::str::FromStr;

/// One GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gtid {
    domain: u32,
    server: u32,
    sequence: u64,
}

/// A point in the primary's history, at most one GTID per domain, kept in
/// domain order. Empty: the beginning (nothing to wait for).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position(Vec<Gtid>);

impl Position {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Moves this position forward to include `other` (each domain's
    /// furthest of the two).
    pub fn merge(&mut self, other: &Position) {
        for gtid in &other.0 {
            match self.0.binary_search_by_key(&gtid.domain, |g| g.domain) {
                Ok(i) if self.0[i].sequence < gtid.sequence => self.0[i] = *gtid,
                Ok(_) => {}
                Err(i) => self.0.insert(i, *gtid),
            }
        }
    }

    /// Whether a server that has applied `self` has applied `other` too.
    pub fn covers(&self, other: &Position) -> bool {
        other.0.iter().all(|gtid| {
            self.0
                .binary_search_by_key(&gtid.domain, |g| g.domain)
                .is_ok_and(|i| self.0[i].sequence >= gtid.sequence)
        })
    }
}

/// `0-11-42,1-12-7`, as MariaDB writes and reads positions.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}-{}-{}", gtid.domain, gtid.server, gtid.sequence)?;
        }
        Ok(())
    }
}

/// Text that is not a MariaDB GTID list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a GTID position: {0:?}")]
pub struct BadPosition(String);

impl FromStr for Position {
    type Err = BadPosition;

    fn from_str(text: &str) -> Result<Self, BadPosition> {
        let mut position = Position::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || BadPosition(text.to_owned());
            let mut numbers = part.splitn(3, '-');
            let mut next = || numbers.next().ok_or_else(bad);
            let gtid = Gtid {
                domain: next()?.parse().map_err(|_| bad())?,
                server: next()?.parse().map_err(|_| bad())?,
                sequence: next()?.parse().map_err(|_| bad())?,
            };
            position.merge(&Position(vec![gtid]));
        }
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Position {
        text.parse().unwrap()
    }

    #[test]
    fn positions_read_and_write_as_mariadb_spells_them() {
        assert_eq!(at("1-12-7, 0-11-42").to_string(), "0-11-42,1-12-7");
        assert_eq!(at("").to_string(), "");
        assert!(at("").is_empty());
        for bad in ["0-11", "x-1-2", "0-1-2-3", "0-1--2"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
    }

    #[test]
    fn merging_keeps_each_domains_furthest_gtid_whichever_server_wrote_it() {
        let mut position = at("0-11-42");
        position.merge(&at("0-12-40,1-11-3"));
        assert_eq!(position, at("0-11-42,1-11-3"));
        position.merge(&at("0-12-43"));
        assert_eq!(position, at("0-12-43,1-11-3"));
    }

    #[test]
    fn a_position_covers_another_when_it_is_as_far_in_each_of_its_domains() {
        assert!(at("0-11-42,1-11-3").covers(&at("0-11-42")));
        assert!(at("0-11-42").covers(&at("0-12-41")));
        assert!(at("0-11-42").covers(&Position::default()));
        assert!(!at("0-11-42").covers(&at("0-11-43")));
        assert!(!at("0-11-42").covers(&at("1-11-1")));
        assert!(!Position::default().covers(&at("0-11-1")));
    }
}
