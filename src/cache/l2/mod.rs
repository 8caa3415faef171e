//! The shared tier: Redis (one server, a Redis Cluster, or a master found
//! through Sentinel), through deadpool-redis.
//!
//! One key per cached response, `{prefix}:e:{<name>}`, replaced by every
//! fill and gone after the stale-if-error window: Redis holds what is cached,
//! however many writes there were. The value carries the generations it was
//! filled under (of its key's shared families: see `Family::is_shared`) and
//! the local families its content names; each shared family's generation
//! lives in `{prefix}:g:{<family>}` and the epoch in `{prefix}:epoch`. A
//! lookup reads the entry and the current generations together and trusts
//! the entry only if they match.
//!
//! Generations never go backwards, whatever happens to their keys: a bump
//! sets `max(old + 1, Redis TIME in µs)` and a missing generation is created
//! from the clock when first read, so one that was evicted, expired or lost
//! in a restart comes back larger than any stamp taken from it. If Redis
//! refuses a bump (full under `noeviction`), the generation is deleted
//! instead (deleting is allowed when full), which equally ends every entry
//! filled under it. Only if that fails too does an invalidation go unheard:
//! the instance stops using the tier and moves everyone to a new epoch once
//! Redis answers again.
//!
//! Every script touches only the one key it declares, so all of this works
//! on a cluster; a lookup's reads go out concurrently (one round trip on one
//! server, one per node on a cluster). A cluster that does not serve every
//! slot (`cluster_state:fail`, checked at each heartbeat) answers every
//! keyed command with an error: the tier is then off, generations are not
//! bumped (nobody can read them), but invalidation messages still go out,
//! through whichever node answers, and once the cluster is whole again
//! every instance moves to a new epoch. The hot path keeps one multiplexed
//! connection taken from the pool, avoiding the pool's per-checkout
//! `UNWATCH`+`PING`; on a connection error it is dropped and the next call
//! checks out a fresh one. Every call has a timeout, so a slow Redis
//! degrades to a miss, never to a stall.

mod codec;
mod keys;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use redis::{Script, Value};
use xxhash_rust::xxh3::xxh3_64;

use super::Loaded;
use super::key::{Family, Key};
use crate::redis_link::{Conn, LinkError, RedisLink};
use crate::store::Position;
pub use codec::Generations;
use codec::{MISSING, decode, encode, invalidation_message, now_millis, parse_generation};
use keys::Keys;

/// How long "Redis refused a write" shows in readiness.
const REFUSAL_SHOWN_MS: i64 = 10_000;

/// What a lookup found, and the generations a fill should carry.
pub struct Fetched {
    /// `None` if Redis could not tell (a fill is then not stored).
    pub generations: Option<Generations>,
    /// The shared commit position, read after the generations: at least
    /// the position of every write whose bump they show. `None` if Redis
    /// has lost it.
    pub position: Option<Position>,
    /// A current entry (`None` inside it: "not found" was cached) and when
    /// it was stored (epoch milliseconds, by the storing instance's clock).
    pub value: Option<(Loaded, i64)>,
}

pub struct L2Settings<'a> {
    pub link: Arc<RedisLink>,
    pub prefix: &'a str,
    pub timeout: Duration,
    /// How long an entry lives: its fresh time plus the stale-if-error window.
    pub ttl: Duration,
    pub negative_ttl: Duration,
}

pub struct L2 {
    link: Arc<RedisLink>,
    keys: Keys,
    timeout: Duration,
    ttl: Duration,
    negative_ttl: Duration,
    /// Generations outlive the entries stamped with them.
    generation_ttl_ms: u64,
    /// An invalidation may have been lost: bump the epoch when Redis is back.
    dirty: AtomicBool,
    /// False while a cluster does not serve every slot.
    cluster_whole: AtomicBool,
    /// When Redis last refused a write for lack of memory (epoch ms).
    refused_write_at: AtomicI64,
    /// Invalidations published here whose echo has not come back (by
    /// hash, with a count). The channel brings each back to its sender,
    /// which bumped its own generations already; bumping again would throw
    /// away what readers refilled in between.
    unechoed: Mutex<HashMap<u64, u32>>,
}

/// More unechoed messages than this means echoes are being lost: start over.
const MAX_UNECHOED: usize = 4096;

/// How long a heartbeat (or a subscription attempt) may take before the
/// channel counts as lost. Deliberately far above a data call's timeout: a
/// loaded machine can stall a reply for a few hundred milliseconds, and a
/// lost channel flushes every instance's local tier.
pub fn heartbeat_timeout(call_timeout: Duration) -> Duration {
    (call_timeout * 10).max(Duration::from_secs(1))
}

impl L2 {
    pub fn new(settings: L2Settings<'_>) -> Self {
        let ttl_ms = u64::try_from(settings.ttl.as_millis()).unwrap_or(u64::MAX);
        Self {
            link: settings.link,
            keys: Keys::new(settings.prefix),
            timeout: settings.timeout,
            ttl: settings.ttl,
            negative_ttl: settings.negative_ttl,
            generation_ttl_ms: ttl_ms.saturating_mul(2),
            dirty: AtomicBool::new(false),
            cluster_whole: AtomicBool::new(true),
            refused_write_at: AtomicI64::new(i64::MIN),
            unechoed: Mutex::new(HashMap::new()),
        }
    }

    pub fn channel(&self) -> &str {
        self.keys.channel()
    }

    /// Runs one exchange under the data calls' timeout.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, LinkError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, LinkError>>,
    {
        self.run_within(op, self.timeout, f).await
    }

    /// Runs one exchange within `timeout`; Redis refusing a write for lack
    /// of memory is noted for readiness.
    async fn run_within<T, F, Fut>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: F,
    ) -> Result<T, LinkError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, LinkError>>,
    {
        let result = self.link.run(op, timeout, f).await;
        if let Err(err) = &result {
            self.note_refusal(err);
        }
        result
    }

    /// Moves the shared commit position forward to include `position`.
    pub async fn merge_position(&self, position: &Position) -> Result<(), LinkError> {
        let key = self.keys.position();
        let text = position.to_string();
        self.run_within("position", self.invalidation_timeout(), |conn| async move {
            self.eval_with(conn, &self.keys.merge_position, &key, text.as_str())
                .await?;
            Ok(())
        })
        .await
    }

    /// Notes a committed write's position in the shared one. If Redis is
    /// full (`noeviction`) it is deleted instead (deleting is allowed when
    /// full): a lost position is taken from the primary again, which is at
    /// least as far.
    async fn record_position(&self, position: &Position) -> Result<(), LinkError> {
        match self.merge_position(position).await {
            Err(err) if !err.is_connection_error() => {
                let key = self.keys.position();
                self.run_within("position", self.invalidation_timeout(), |conn| async move {
                    del(conn, &key).await
                })
                .await
            }
            merged => merged,
        }
    }

    /// The entry for `key` if it was filled under the current generations,
    /// and those generations (for a fill).
    pub async fn fetch(&self, key: &Key) -> Result<Fetched, LinkError> {
        let mut generation_keys = vec![self.keys.epoch()];
        generation_keys.extend(key.shared.iter().map(|f| self.keys.generation(f)));
        let entry_key = self.keys.entry(key);
        let position_key = self.keys.position();
        let (generations, position, bytes) = self
            .run("fetch", |conn| async move {
                let (generations, position, entry) =
                    get_all(conn.clone(), &generation_keys, &position_key, &entry_key).await?;
                let mut values = Vec::with_capacity(generations.len());
                let mut missing = Vec::new();
                for (i, value) in generations.into_iter().enumerate() {
                    let value = value.and_then(|v| parse_generation(&v));
                    if value.is_none() {
                        missing.push(i);
                    }
                    values.push(value.unwrap_or(0));
                }
                // Created now, so larger than any stamp: nothing can match.
                let created = missing.iter().map(|&i| {
                    self.eval(
                        conn.clone(),
                        &self.keys.read_generation,
                        &generation_keys[i],
                    )
                });
                for (i, value) in missing.iter().zip(join_all(created).await) {
                    values[*i] = parse_generation(&value?).unwrap_or(0);
                }
                Ok((Generations(values), position, entry))
            })
            .await?;
        let position = position.and_then(|bytes| {
            std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse::<Position>().ok())
        });
        let value = bytes
            .as_deref()
            .and_then(|bytes| decode(bytes, &generations));
        Ok(Fetched {
            generations: Some(generations),
            position,
            value,
        })
    }

    /// Stores a fill under the generations its lookup saw; it replaces the
    /// resource's previous entry.
    pub async fn store(
        &self,
        key: &Key,
        generations: &Generations,
        loaded: &Loaded,
    ) -> Result<(), LinkError> {
        let (payload, ttl) = match &loaded.entry {
            Some(entry) => (entry.encode(), self.ttl),
            None => (MISSING.to_vec(), self.negative_ttl),
        };
        let bytes = encode(generations, &loaded.families, &payload);
        let entry_key = self.keys.entry(key);
        self.run("store", |mut conn| async move {
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            redis::cmd("SET")
                .arg(entry_key)
                .arg(bytes)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Moves the families' generations on and tells the other instances.
    /// A generation Redis will not bump is deleted; if even that fails, the
    /// invalidation is recorded as lost.
    ///
    /// Invalidations get the heartbeat's patience, not a data call's: a lost
    /// one makes every instance drop its whole local tier, which costs far
    /// more than a write waiting out a slow reply on a loaded machine.
    ///
    /// The message goes out even when the generations could not be bumped:
    /// it is what keeps the other instances' local tiers right, and a node
    /// that refuses keyed commands may still pass it on. While an
    /// invalidation is known lost (until the epoch moves), nobody should be
    /// trusting shared entries, so generations are not bumped at all.
    ///
    /// A committed write's `position` is recorded in the shared position
    /// first, so whoever reads a generation it bumped reads the position
    /// after it too; the message carries it as well.
    pub async fn bump(&self, families: &[Family], position: Option<&Position>) {
        let keys: Vec<String> = families
            .iter()
            .filter(|f| f.is_shared())
            .map(|f| self.keys.generation(f))
            .collect();
        if self.is_dirty() {
            if self
                .publish_own(invalidation_message(families, position))
                .await
                .is_err()
            {
                self.mark_dirty();
            }
            return;
        }
        let positioned = match position {
            Some(position) => self.record_position(position).await,
            None => Ok(()),
        };
        let bumped = self
            .run_within("bump", self.invalidation_timeout(), |conn| async move {
                // A bump whose position Redis did not take would let a fill
                // trust a lagging replica: treat it as a lost invalidation.
                positioned?;
                let bumps = keys
                    .iter()
                    .map(|k| self.eval(conn.clone(), &self.keys.bump_generation, k));
                let results = join_all(bumps).await;
                let refused: Vec<&String> = keys
                    .iter()
                    .zip(&results)
                    .filter(|(_, result)| result.is_err())
                    .map(|(key, _)| key)
                    .collect();
                if let Some(err) = results.into_iter().find_map(Result::err) {
                    tracing::warn!(error = %err, "redis refused a generation bump: deleting");
                    if err.is_connection_error() {
                        return Err(err);
                    }
                    crate::metrics::redis_error("bump");
                    self.note_refusal(&err);
                    let deletes = refused.into_iter().map(|k| del(conn.clone(), k));
                    for deleted in join_all(deletes).await {
                        deleted?;
                    }
                }
                Ok(())
            })
            .await;
        let published = self
            .publish_own(invalidation_message(families, position))
            .await;
        if bumped.is_err() || published.is_err() {
            self.mark_dirty();
        }
    }

    /// Publishes one of this instance's invalidations, noting it so that
    /// its echo is not applied again here.
    async fn publish_own(&self, message: String) -> Result<(), LinkError> {
        let hash = xxh3_64(message.as_bytes());
        {
            let mut unechoed = self.unechoed.lock().expect("not poisoned");
            if unechoed.len() >= MAX_UNECHOED {
                unechoed.clear();
            }
            *unechoed.entry(hash).or_default() += 1;
        }
        let published = self.publish(message).await;
        if published.is_err() {
            self.take_unechoed(hash);
        }
        published
    }

    /// Whether `payload` is the echo of one of this instance's own
    /// invalidations (each echo is recognised once).
    pub fn is_own_echo(&self, payload: &[u8]) -> bool {
        self.take_unechoed(xxh3_64(payload))
    }

    /// Forgets the invalidations whose echo may never come (the
    /// subscription was lost); their echoes, if they come, are applied.
    pub fn forget_unechoed(&self) {
        self.unechoed.lock().expect("not poisoned").clear();
    }

    fn take_unechoed(&self, hash: u64) -> bool {
        let mut unechoed = self.unechoed.lock().expect("not poisoned");
        match unechoed.get_mut(&hash) {
            Some(1) => unechoed.remove(&hash).is_some(),
            Some(count) => {
                *count -= 1;
                true
            }
            None => false,
        }
    }

    /// Publishes on the channel, through any node of a cluster that
    /// answers (a message published on any reaches every node's
    /// subscribers).
    async fn publish(&self, message: String) -> Result<(), LinkError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.keys.channel()).arg(message);
        self.link
            .run_anywhere("publish", self.invalidation_timeout(), &cmd)
            .await
            .map(drop)
    }

    /// On a cluster, checks that it serves every slot; when that changes,
    /// says so, and while it does not, the tier is off (its invalidations
    /// count as lost, so the epoch moves once it is whole again).
    pub async fn check_cluster(&self) {
        if !self.link.is_cluster() {
            return;
        }
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("INFO");
        let info = self
            .link
            .ask_any_node("cluster_info", self.invalidation_timeout(), &cmd)
            .await
            .and_then(|info| redis::from_redis_value::<String>(info).ok());
        let whole = info.is_some_and(|info| info.contains("cluster_state:ok"));
        if !whole {
            self.mark_dirty();
        }
        if self.cluster_whole.swap(whole, Ordering::AcqRel) != whole {
            if whole {
                tracing::info!("the redis cluster serves every slot again");
            } else {
                tracing::warn!(
                    "the redis cluster does not serve every slot: shared tier off, \
                     invalidations still announced"
                );
            }
        }
    }

    /// Whether a cluster serves every slot (always true for one server).
    pub fn is_whole(&self) -> bool {
        self.cluster_whole.load(Ordering::Acquire)
    }

    fn note_refusal(&self, err: &LinkError) {
        if err.is_out_of_memory() {
            self.refused_write_at.store(now_millis(), Ordering::Release);
        }
    }

    /// Records that an invalidation could not be announced.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Whether an invalidation may have been lost and not yet repaired.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Whether Redis refused a write for lack of memory recently.
    pub fn is_refusing_writes(&self) -> bool {
        now_millis().saturating_sub(self.refused_write_at.load(Ordering::Acquire))
            < REFUSAL_SHOWN_MS
    }

    /// If an invalidation may have been lost, moves every instance to a new
    /// epoch: no shared entry from before matches any more, and every
    /// instance clears its local tier.
    pub async fn recover(&self) -> Result<(), LinkError> {
        if !self.is_dirty() || !self.is_whole() {
            return Ok(());
        }
        let epoch = self.keys.epoch();
        self.run_within("recover", self.invalidation_timeout(), |conn| async move {
            self.eval(conn, &self.keys.bump_generation, &epoch).await?;
            Ok(())
        })
        .await?;
        self.publish("flush".to_owned()).await?;
        self.dirty.store(false, Ordering::Release);
        tracing::info!("redis is back: shared cache epoch bumped");
        Ok(())
    }

    /// How long invalidations and readiness checks wait: a heartbeat.
    fn invalidation_timeout(&self) -> Duration {
        heartbeat_timeout(self.timeout)
    }

    /// A round trip for readiness, allowed as long as a heartbeat: one slow
    /// reply on a loaded machine is not an outage.
    pub async fn ping(&self) -> Result<(), LinkError> {
        self.run_within("ping", self.invalidation_timeout(), |mut conn| async move {
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok(())
        })
        .await
    }

    /// Runs a one-key script (and the generations' TTL), by its hash,
    /// loading it where the key lives if Redis does not know it yet.
    async fn eval(&self, conn: Conn, script: &Script, key: &str) -> Result<Vec<u8>, LinkError> {
        self.eval_with(conn, script, key, self.generation_ttl_ms)
            .await
    }

    /// [`L2::eval`] with another argument than the generations' TTL.
    async fn eval_with(
        &self,
        mut conn: Conn,
        script: &Script,
        key: &str,
        arg: impl redis::ToRedisArgs,
    ) -> Result<Vec<u8>, LinkError> {
        let value: Value = script.key(key).arg(arg).invoke_async(&mut conn).await?;
        Ok(match value {
            Value::BulkString(bytes) => bytes,
            Value::SimpleString(text) => text.into_bytes(),
            Value::Int(n) => n.to_string().into_bytes(),
            _ => Vec::new(),
        })
    }
}

/// The values of the generation keys, then of the position key, and the
/// entry's. On one node they travel as one pipeline, run in that order (one
/// round trip, one wake of the connection); a cluster keeps them on
/// different nodes, so each is its own request there, and the position is
/// read once the generations are in.
async fn get_all(
    mut conn: Conn,
    generation_keys: &[String],
    position_key: &str,
    entry_key: &str,
) -> Result<(Vec<Option<Vec<u8>>>, Option<Vec<u8>>, Option<Vec<u8>>), LinkError> {
    if let Conn::Single(_) = conn {
        let mut pipeline = redis::pipe();
        for key in generation_keys
            .iter()
            .map(String::as_str)
            .chain([position_key, entry_key])
        {
            pipeline.get(key);
        }
        let mut values: Vec<Option<Vec<u8>>> = pipeline.query_async(&mut conn).await?;
        let entry = values.pop().flatten();
        let position = values.pop().flatten();
        return Ok((values, position, entry));
    }
    let reads = generation_keys.iter().map(|k| get(conn.clone(), k));
    let generations_then_position = async {
        let generations = join_all(reads)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let position = get(conn.clone(), position_key).await?;
        Ok::<_, LinkError>((generations, position))
    };
    let (read, entry) = tokio::join!(generations_then_position, get(conn.clone(), entry_key));
    let (generations, position) = read?;
    Ok((generations, position, entry?))
}

async fn get(mut conn: Conn, key: &str) -> Result<Option<Vec<u8>>, LinkError> {
    Ok(redis::cmd("GET").arg(key).query_async(&mut conn).await?)
}

async fn del(mut conn: Conn, key: &str) -> Result<(), LinkError> {
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}
