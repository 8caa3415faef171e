//! The shared tier: Redis, reached through deadpool-redis.
//!
//! Keys carry generations: `{prefix}:e{epoch}:{gen}.{gen}:{name}`. Writes
//! `INCR` the generations of the families they touch (before and after they
//! commit), so a fill that read old data lands under a key nobody asks for
//! any more; nothing is ever deleted and stale fills cannot win. A lookup
//! reads the generations and the entry in one round trip (a Lua script).
//!
//! The hot path keeps one multiplexed connection taken from the pool: it is
//! cheap to clone and pipelines concurrent commands, and it avoids the
//! pool's per-checkout `UNWATCH`+`PING`. On an error it is dropped and the
//! next call checks a fresh one out. Every call has a short timeout, so a
//! slow Redis degrades to a miss, never to a stall.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime};
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script};

use super::entry::Entry;
use super::key::Key;

/// Stored for "no such resource" (negative caching).
const MISSING: &[u8] = b"\0";

const FETCH: &str = r"
local parts = {}
for i, v in ipairs(redis.call('MGET', unpack(KEYS))) do parts[i] = v or '0' end
local key = ARGV[1] .. 'e' .. parts[1] .. ':' .. table.concat(parts, '.', 2) .. ':' .. ARGV[2]
return {key, redis.call('GET', key)}
";

#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis did not answer in time")]
    Timeout,
}

pub struct L2 {
    pool: Pool,
    shared: Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    channel: String,
    timeout: Duration,
    ttl: Duration,
    negative_ttl: Duration,
    fetch: Script,
    /// An invalidation may have been lost: bump the epoch when Redis is back.
    dirty: AtomicBool,
}

/// What a lookup found, and where a fill should go.
pub struct Fetched {
    pub key: String,
    /// The entry (`None`: "not found" was cached) and its age.
    pub value: Option<(Option<Entry>, Duration)>,
}

pub struct L2Settings<'a> {
    pub url: &'a str,
    pub prefix: &'a str,
    pub timeout: Duration,
    pub ttl: Duration,
    pub negative_ttl: Duration,
}

impl L2 {
    pub fn new(settings: L2Settings<'_>) -> Result<Self, deadpool_redis::CreatePoolError> {
        let pool = Config::from_url(settings.url).create_pool(Some(Runtime::Tokio1))?;
        Ok(Self {
            pool,
            shared: Mutex::new(None),
            prefix: format!("{}:", settings.prefix),
            channel: format!("{}:invalidations", settings.prefix),
            timeout: settings.timeout,
            ttl: settings.ttl,
            negative_ttl: settings.negative_ttl,
            fetch: Script::new(FETCH),
            dirty: AtomicBool::new(false),
        })
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    async fn connection(&self) -> Result<MultiplexedConnection, L2Error> {
        if let Some(conn) = self.shared.lock().expect("not poisoned").clone() {
            return Ok(conn);
        }
        let conn = deadpool_redis::Connection::take(self.pool.get().await?);
        *self.shared.lock().expect("not poisoned") = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one Redis exchange under the timeout; on failure the shared
    /// connection is dropped so the next call starts afresh.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, L2Error>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, L2Error>>,
    {
        let result =
            match tokio::time::timeout(self.timeout, async { f(self.connection().await?).await })
                .await
            {
                Ok(result) => result,
                Err(_) => Err(L2Error::Timeout),
            };
        if let Err(err) = &result {
            crate::metrics::redis_error(op);
            tracing::debug!(error = %err, op, "redis call failed");
            *self.shared.lock().expect("not poisoned") = None;
        }
        result
    }

    fn generation_keys(&self, families: &[String]) -> Vec<String> {
        let mut keys = Vec::with_capacity(families.len() + 1);
        keys.push(format!("{}epoch", self.prefix));
        keys.extend(families.iter().map(|f| format!("{}g:{f}", self.prefix)));
        keys
    }

    pub async fn fetch(&self, key: &Key) -> Result<Fetched, L2Error> {
        let keys = self.generation_keys(&key.families);
        let (full, bytes): (String, Option<Vec<u8>>) = self
            .run("fetch", |mut conn| async move {
                let mut invocation = self.fetch.prepare_invoke();
                invocation.arg(&self.prefix).arg(&key.name);
                for k in &keys {
                    invocation.key(k);
                }
                Ok(invocation.invoke_async(&mut conn).await?)
            })
            .await?;
        // Undecodable (another version's format): a miss, overwritten on fill.
        let value = bytes.as_deref().and_then(|bytes| {
            let (stored_at, rest) = bytes.split_first_chunk::<8>()?;
            let age = now_millis().saturating_sub(i64::from_le_bytes(*stored_at));
            let age = Duration::from_millis(u64::try_from(age).unwrap_or(0));
            let entry = if rest == MISSING {
                None
            } else {
                Some(Entry::decode(rest)?)
            };
            Some((entry, age))
        });
        Ok(Fetched { key: full, value })
    }

    pub async fn store(&self, key: String, entry: &Option<Entry>) -> Result<(), L2Error> {
        // Stored with the time it was stored, so every reader knows its age.
        let (encoded, ttl) = match entry {
            Some(entry) => (entry.encode(), self.ttl),
            None => (MISSING.to_vec(), self.negative_ttl),
        };
        let mut bytes = Vec::with_capacity(8 + encoded.len());
        bytes.extend_from_slice(&now_millis().to_le_bytes());
        bytes.extend_from_slice(&encoded);
        self.run("store", |mut conn| async move {
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            let _: () = conn.pset_ex(key, bytes, millis).await?;
            Ok(())
        })
        .await
    }

    /// Records that an invalidation could not be announced.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Bumps the families' shared generations and tells the other instances.
    pub async fn bump(&self, families: &[String]) -> Result<(), L2Error> {
        let keys = self.generation_keys(families);
        let message = format!("bump\n{}", families.join("\n"));
        let result = self
            .run("bump", |mut conn| async move {
                let mut pipe = redis::pipe();
                for key in &keys[1..] {
                    pipe.incr(key, 1).ignore();
                }
                pipe.publish(&self.channel, message).ignore();
                let _: () = pipe.query_async(&mut conn).await?;
                Ok(())
            })
            .await;
        if result.is_err() {
            self.mark_dirty();
        }
        result
    }

    /// If an invalidation may have been lost while Redis was unreachable,
    /// moves every instance to a new epoch: all shared entries become
    /// unreachable and every instance clears its local tier.
    pub async fn recover(&self) -> Result<(), L2Error> {
        if !self.dirty.load(Ordering::Acquire) {
            return Ok(());
        }
        let epoch = format!("{}epoch", self.prefix);
        self.run("recover", |mut conn| async move {
            let mut pipe = redis::pipe();
            pipe.incr(&epoch, 1).ignore();
            pipe.publish(&self.channel, "flush").ignore();
            let _: () = pipe.query_async(&mut conn).await?;
            Ok(())
        })
        .await?;
        self.dirty.store(false, Ordering::Release);
        tracing::info!("redis is back: shared cache epoch bumped");
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), L2Error> {
        self.run("ping", |mut conn| async move {
            let _: () = redis::cmd("PING").query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }
}

fn now_millis() -> i64 {
    crate::domain::time::now().timestamp_millis()
}
