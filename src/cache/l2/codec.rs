//! The forms the shared tier puts in Redis: a stored response (its
//! generations, the local families its content names, the entry) and an
//! invalidation message.

use super::super::Loaded;
use super::super::entry::Entry;
use super::super::key::Family;
use crate::store::Position;

/// Stored for "no such resource" (negative caching).
pub const MISSING: &[u8] = b"\0";

/// The generations an entry was filled under: the epoch, then one per
/// shared family of its key, in the key's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generations(pub Vec<u64>);

pub fn parse_generation(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// `commit`, then the write's position as `@position`, then one family
/// per line; see `sync`.
pub fn invalidation_message(families: &[Family], position: Option<&Position>) -> String {
    let mut message = String::from("commit");
    if let Some(position) = position {
        message.push_str("\n@");
        message.push_str(&position.to_string());
    }
    for family in families {
        message.push('\n');
        message.push_str(&family.to_string());
    }
    message
}

/// Marks this layout of a stored value; any other is a miss.
const LAYOUT: u8 = 2;

/// `[layout: u8][stored at: i64][count: u8][generation: u64; count]`
/// `[families: u32 length, then one per line][payload]`.
pub fn encode(generations: &Generations, families: &[Family], payload: &[u8]) -> Vec<u8> {
    let names = families
        .iter()
        .map(Family::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let mut bytes = Vec::with_capacity(14 + 8 * generations.0.len() + names.len() + payload.len());
    bytes.push(LAYOUT);
    bytes.extend_from_slice(&now_millis().to_le_bytes());
    bytes.push(u8::try_from(generations.0.len()).unwrap_or(u8::MAX));
    for value in &generations.0 {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes.extend_from_slice(&u32::try_from(names.len()).unwrap_or(0).to_le_bytes());
    bytes.extend_from_slice(names.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The entry and when it was stored, if it was filled under `current`.
/// Anything undecodable (another version's format) is a miss, overwritten
/// on fill.
pub fn decode(bytes: &[u8], current: &Generations) -> Option<(Loaded, i64)> {
    let (layout, rest) = bytes.split_first()?;
    if *layout != LAYOUT {
        return None;
    }
    let (stored_at, rest) = rest.split_first_chunk::<8>()?;
    let (count, mut rest) = rest.split_first()?;
    if usize::from(*count) != current.0.len() {
        return None;
    }
    for expected in &current.0 {
        let (value, tail) = rest.split_first_chunk::<8>()?;
        if u64::from_le_bytes(*value) != *expected {
            return None;
        }
        rest = tail;
    }
    let (length, rest) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
    let (names, rest) = (rest.get(..length)?, rest.get(length..)?);
    let families = match std::str::from_utf8(names).ok()? {
        "" => Vec::new(),
        names => names
            .split('\n')
            .map(str::parse)
            .collect::<Result<_, ()>>()
            .ok()?,
    };
    let entry = if rest == MISSING {
        None
    } else {
        Some(Entry::decode(rest)?)
    };
    Some((Loaded { entry, families }, i64::from_le_bytes(*stored_at)))
}

pub fn now_millis() -> i64 {
    crate::domain::time::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_trusted_only_under_the_generations_it_was_filled_under() {
        let entry = Entry::json(&"hello", None);
        let filled = Generations(vec![5, 7]);
        let families = [Family::Article(3), Family::Anchor(3, 1)];
        let bytes = encode(&filled, &families, &entry.encode());
        let (found, _) = decode(&bytes, &filled).expect("current");
        assert_eq!(found.entry, Some(entry));
        assert_eq!(found.families, families);
        assert!(decode(&bytes, &Generations(vec![5, 8])).is_none());
        assert!(decode(&bytes, &Generations(vec![6, 7])).is_none());
        assert!(decode(&bytes, &Generations(vec![5, 7, 1])).is_none());
        assert!(decode(&bytes[..12], &filled).is_none());
    }

    #[test]
    fn a_cached_absence_round_trips() {
        let filled = Generations(vec![1, 2]);
        let (found, _) = decode(&encode(&filled, &[], MISSING), &filled).expect("current");
        assert_eq!(found.entry, None);
        assert!(found.families.is_empty());
    }

    #[test]
    fn messages_name_the_position_and_each_family() {
        let families = [Family::Article(1), Family::Tag("rust".into())];
        assert_eq!(invalidation_message(&families, None), "commit\na:1\nt:rust");
        let position: Position = "0-11-42".parse().unwrap();
        assert_eq!(
            invalidation_message(&families[..1], Some(&position)),
            "commit\n@0-11-42\na:1"
        );
    }
}
