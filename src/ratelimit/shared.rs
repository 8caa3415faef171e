//! Buckets shared by every instance: one Redis key per bucket, updated by
//! an atomic Lua script (GCRA, the algorithm of the in-process buckets).
//! The script names its one key in KEYS, so it runs on Redis Cluster too.
//! While Redis fails, callers get `None` and use their in-process buckets;
//! Redis is tried again after a short pause.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;
use redis::aio::MultiplexedConnection;

use super::{Bucket, Decision, Rate};
use crate::config::RedisSettings;

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
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    timeout: Duration,
    script: Script,
    /// Milliseconds since the epoch before which Redis is not tried.
    paused_until_ms: AtomicU64,
}

impl SharedBuckets {
    /// `None` (and a warning) if the URL does not parse or the CA cannot
    /// be read.
    pub fn new(redis: &RedisSettings, prefix: &str, timeout: Duration) -> Option<Self> {
        let client = redis
            .client(redis.url.expose())
            .inspect_err(|err| tracing::warn!(error = %err, "rate limits stay in process"))
            .ok()?;
        Some(Self {
            client,
            connection: Mutex::new(None),
            prefix: format!("{prefix}:rl:"),
            timeout,
            script: Script::new(GCRA),
            paused_until_ms: AtomicU64::new(0),
        })
    }

    /// The shared verdict, or `None` if Redis did not give one in time.
    pub async fn check(&self, class: &str, key: Bucket, rate: Rate) -> Option<Decision> {
        if now_ms() < self.paused_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let bucket = format!("{}{class}:{key}", self.prefix);
        let interval_us = u64::try_from(rate.interval.as_micros()).unwrap_or(u64::MAX);
        let call = async {
            let mut connection = self.connection().await?;
            self.script
                .key(bucket)
                .arg(interval_us)
                .arg(rate.limit)
                .invoke_async::<(u8, u32, u64, u64)>(&mut connection)
                .await
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((allowed, remaining, retry_us, reset_us))) => Some(Decision {
                allowed: allowed == 1,
                limit: rate.limit,
                remaining,
                reset: Duration::from_micros(reset_us),
                retry_after: Duration::from_micros(retry_us),
            }),
            failed => {
                let reason = match failed {
                    Ok(Err(err)) => err.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::warn!(error = %reason, "shared rate limit unavailable; counting in process");
                crate::metrics::redis_error("rate_limit");
                *self.connection.lock().expect("not poisoned") = None;
                let pause = u64::try_from(PAUSE_AFTER_FAILURE.as_millis()).unwrap_or(1000);
                self.paused_until_ms
                    .store(now_ms() + pause, Ordering::Relaxed);
                None
            }
        }
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(connection) = self.connection.lock().expect("not poisoned").clone() {
            return Ok(connection);
        }
        let connection = self.client.get_multiplexed_async_connection().await?;
        *self.connection.lock().expect("not poisoned") = Some(connection.clone());
        Ok(connection)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
