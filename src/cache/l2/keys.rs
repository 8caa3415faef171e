//! The names the shared tier uses in Redis, and its scripts. Every script
//! touches only the one key it declares, so all of it works on a cluster;
//! names put the part that identifies a response or a family in braces (a
//! cluster hash tag), so each lives on one node as a whole.

use redis::Script;

use super::super::key::{Family, Key};

/// Reads a generation, creating it from Redis' clock if it is missing.
const READ_GENERATION: &str = r"
local v = redis.call('GET', KEYS[1])
if v then return v end
local t = redis.call('TIME')
v = string.format('%d', t[1] * 1000000 + t[2])
redis.call('SET', KEYS[1], v, 'PX', ARGV[1])
return v
";

/// Moves a generation past its old value and past Redis' clock.
const BUMP_GENERATION: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = math.max(old + 1, now)
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', ARGV[1])
return 1
";

/// Moves the shared commit position (`domain-server-sequence`, one per
/// domain) forward to include ARGV[1]: each domain keeps its furthest.
const MERGE_POSITION: &str = r"
local furthest = {}
local function take(text)
  for domain, server, sequence in string.gmatch(text or '', '(%d+)-(%d+)-(%d+)') do
    local seen = furthest[domain]
    if not seen or tonumber(sequence) > tonumber(seen[2]) then
      furthest[domain] = {server, sequence}
    end
  end
end
take(redis.call('GET', KEYS[1]))
take(ARGV[1])
local parts = {}
for domain, gtid in pairs(furthest) do
  table.insert(parts, domain .. '-' .. gtid[1] .. '-' .. gtid[2])
end
table.sort(parts)
local merged = table.concat(parts, ',')
redis.call('SET', KEYS[1], merged)
return merged
";

/// The tier's key names under one prefix, and its scripts.
pub struct Keys {
    prefix: String,
    channel: String,
    pub read_generation: Script,
    pub bump_generation: Script,
    pub merge_position: Script,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            channel: format!("{prefix}:invalidations"),
            read_generation: Script::new(READ_GENERATION),
            bump_generation: Script::new(BUMP_GENERATION),
            merge_position: Script::new(MERGE_POSITION),
        }
    }

    /// The channel invalidations are announced on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// One cached response.
    pub fn entry(&self, key: &Key) -> String {
        format!("{}:e:{{{}}}", self.prefix, key.name)
    }

    /// One shared family's generation.
    pub fn generation(&self, family: &Family) -> String {
        format!("{}:g:{{{family}}}", self.prefix)
    }

    /// The epoch every entry is filled under.
    pub fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// The highest commit position of the writes announced so far. It has
    /// no TTL: only eviction or a restart loses it (then it is put back
    /// from the primary's).
    pub fn position(&self) -> String {
        format!("{}:position", self.prefix)
    }
}
