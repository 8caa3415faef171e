//! Buckets shared by every instance: one Redis key per bucket, updated by
//! an atomic Lua script (GCRA, the algorithm of the in-process buckets),
//! through the one link to Redis (so in every mode: one server, a cluster,
//! Sentinel). The script names its one key in KEYS, so it runs on Redis
//! Cluster too. While Redis fails, callers get `None` and use their
//! in-process buckets; Redis is tried again after a short pause.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;

use super::{Bucket, Decision, Rate};
use crate::redis_link::{LinkError, RedisLink};

/// KEYS[1]: the bucket. ARGV[1]: the refill interval in microseconds,
/// ARGV[2]: the bucket size. The key holds the theoretical arrival time
/// (TAT) in microseconds of Redis's clock, and expires once the bucket is
/// full again. Returns {allowed, remaining, retry_after_us, reset_us}.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - limit * interval
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), 0, next_tat - now}
";

/// How long Redis is left alone after a failure.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

pub struct SharedBuckets {
    link: Arc<RedisLink>,
    prefix: String,
    timeout: Duration,
    script: Script,
    /// Milliseconds since the epoch before which Redis is not tried.
    paused_until_ms: AtomicU64,
}

impl SharedBuckets {
    pub fn new(link: Arc<RedisLink>, prefix: &str, timeout: Duration) -> Self {
        Self {
            link,
            prefix: format!("{prefix}:rl:"),
            timeout,
            script: Script::new(GCRA),
            paused_until_ms: AtomicU64::new(0),
        }
    }

    /// The shared verdict, or `None` if Redis did not give one in time.
    pub async fn check(&self, class: &str, key: Bucket, rate: Rate) -> Option<Decision> {
        if now_ms() < self.paused_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let bucket = format!("{}{class}:{key}", self.prefix);
        let interval_us = u64::try_from(rate.interval.as_micros()).unwrap_or(u64::MAX);
        let verdict = self
            .link
            .run("rate_limit", self.timeout, |mut conn| async move {
                let verdict: (u8, u32, u64, u64) = self
                    .script
                    .key(bucket)
                    .arg(interval_us)
                    .arg(rate.limit)
                    .invoke_async(&mut conn)
                    .await?;
                Ok::<_, LinkError>(verdict)
            })
            .await;
        match verdict {
            Ok((allowed, remaining, retry_us, reset_us)) => Some(Decision {
                allowed: allowed == 1,
                limit: rate.limit,
                remaining,
                reset: Duration::from_micros(reset_us),
                retry_after: Duration::from_micros(retry_us),
            }),
            Err(err) => {
                tracing::warn!(error = %err, "shared rate limit unavailable; counting in process");
                let pause = u64::try_from(PAUSE_AFTER_FAILURE.as_millis()).unwrap_or(1000);
                self.paused_until_ms
                    .store(now_ms() + pause, Ordering::Relaxed);
                None
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
