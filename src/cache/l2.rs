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

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ConnectionAddr, IntoConnectionInfo, RedisFuture, Value};

use super::Loaded;
use super::entry::Entry;
use super::key::{Family, Key};
use super::stamp::Bump;
use crate::config::RedisMode;
use crate::store::Position;

/// Stored for "no such resource" (negative caching).
const MISSING: &[u8] = b"\0";

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

/// How long "Redis refused a write" shows in readiness.
const REFUSAL_SHOWN_MS: i64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis did not answer in time")]
    Timeout,
}

impl L2Error {
    /// The connection itself failed (as opposed to Redis answering "no").
    fn is_connection_error(&self) -> bool {
        match self {
            L2Error::Redis(err) => {
                err.is_io_error() || err.is_connection_dropped() || err.is_timeout()
            }
            L2Error::Pool(_) | L2Error::Timeout => true,
        }
    }

    /// Redis is full and refuses writes (`maxmemory` with `noeviction`).
    fn is_out_of_memory(&self) -> bool {
        matches!(self, L2Error::Redis(err) if err.code() == Some("OOM"))
    }
}

enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
    Sentinel(deadpool_redis::sentinel::Pool),
}

/// A connection to one server or to a cluster.
#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The generations an entry was filled under: the epoch, then one per
/// family of its key, in the key's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generations(Vec<u64>);

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
    /// The client of the first URL: in single mode, the server (with the
    /// settings' TLS roots).
    pub first: redis::Client,
    pub urls: Vec<String>,
    pub mode: RedisMode,
    pub sentinel_master: &'a str,
    pub prefix: &'a str,
    pub timeout: Duration,
    /// How long an entry lives: its fresh time plus the stale-if-error window.
    pub ttl: Duration,
    pub negative_ttl: Duration,
}

pub struct L2 {
    pool: Pool,
    shared: Mutex<Option<Conn>>,
    prefix: String,
    channel: String,
    timeout: Duration,
    ttl: Duration,
    negative_ttl: Duration,
    /// Generations outlive the entries stamped with them.
    generation_ttl_ms: u64,
    read_generation: OneKeyScript,
    bump_generation: OneKeyScript,
    merge_position: OneKeyScript,
    /// An invalidation may have been lost: bump the epoch when Redis is back.
    dirty: AtomicBool,
    /// On a cluster, the nodes named in the configuration, for messages
    /// and checks that any node can take (empty otherwise).
    cluster_nodes: Vec<(String, u16)>,
    /// False while a cluster does not serve every slot.
    cluster_whole: AtomicBool,
    /// When Redis last refused a write for lack of memory (epoch ms).
    refused_write_at: AtomicI64,
}

impl L2 {
    pub fn new(settings: L2Settings<'_>) -> Result<Self, deadpool_redis::CreatePoolError> {
        let runtime = Some(deadpool_redis::Runtime::Tokio1);
        let pool = match settings.mode {
            RedisMode::Single => {
                let info = settings.first.get_connection_info().clone();
                let manager = deadpool_redis::Manager::new(info)
                    .map_err(|err| deadpool_redis::CreatePoolError::Config(err.into()))?;
                Pool::Single(
                    deadpool_redis::Pool::builder(manager)
                        .runtime(deadpool_redis::Runtime::Tokio1)
                        .build()
                        .map_err(deadpool_redis::CreatePoolError::Build)?,
                )
            }
            RedisMode::Cluster => Pool::Cluster(
                deadpool_redis::cluster::Config::from_urls(settings.urls.clone())
                    .create_pool(runtime)?,
            ),
            RedisMode::Sentinel => Pool::Sentinel(
                deadpool_redis::sentinel::Config::from_urls(
                    settings.urls.clone(),
                    settings.sentinel_master.to_owned(),
                    deadpool_redis::sentinel::SentinelServerType::Master,
                )
                .create_pool(runtime)?,
            ),
        };
        let ttl_ms = u64::try_from(settings.ttl.as_millis()).unwrap_or(u64::MAX);
        let cluster_nodes = match settings.mode {
            RedisMode::Cluster => settings
                .urls
                .iter()
                .filter_map(
                    |url| match url.as_str().into_connection_info().ok()?.addr() {
                        ConnectionAddr::Tcp(host, port)
                        | ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
                        _ => None,
                    },
                )
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            pool,
            shared: Mutex::new(None),
            prefix: settings.prefix.to_owned(),
            channel: format!("{}:invalidations", settings.prefix),
            timeout: settings.timeout,
            ttl: settings.ttl,
            negative_ttl: settings.negative_ttl,
            generation_ttl_ms: ttl_ms.saturating_mul(2),
            read_generation: OneKeyScript::new(READ_GENERATION),
            bump_generation: OneKeyScript::new(BUMP_GENERATION),
            merge_position: OneKeyScript::new(MERGE_POSITION),
            dirty: AtomicBool::new(false),
            cluster_nodes,
            cluster_whole: AtomicBool::new(true),
            refused_write_at: AtomicI64::new(i64::MIN),
        })
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    async fn connection(&self) -> Result<Conn, L2Error> {
        if let Some(conn) = self.shared.lock().expect("not poisoned").clone() {
            return Ok(conn);
        }
        let conn = match &self.pool {
            Pool::Single(pool) => Conn::Single(deadpool_redis::Connection::take(pool.get().await?)),
            Pool::Cluster(pool) => {
                Conn::Cluster(deadpool_redis::cluster::Connection::take(pool.get().await?))
            }
            // The sentinels name the master at each checkout, so after a
            // failover the next connection reaches the new one.
            Pool::Sentinel(pool) => Conn::Single(deadpool_redis::sentinel::Connection::take(
                pool.get().await?,
            )),
        };
        *self.shared.lock().expect("not poisoned") = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one exchange under the call timeout. A failed connection is
    /// dropped so the next call starts afresh; Redis refusing a write is
    /// noted.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, L2Error>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, L2Error>>,
    {
        self.run_within(op, self.timeout, f).await
    }

    async fn run_within<T, F, Fut>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: F,
    ) -> Result<T, L2Error>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, L2Error>>,
    {
        let result = match tokio::time::timeout(timeout, async {
            f(self.connection().await?).await
        })
        .await
        {
            Ok(result) => result,
            Err(_) => Err(L2Error::Timeout),
        };
        if let Err(err) = &result {
            crate::metrics::redis_error(op);
            tracing::debug!(error = %err, op, "redis call failed");
            self.note_refusal(err);
            if err.is_connection_error() {
                *self.shared.lock().expect("not poisoned") = None;
            }
        }
        result
    }

    fn entry_key(&self, key: &Key) -> String {
        format!("{}:e:{{{}}}", self.prefix, key.name)
    }

    fn generation_key(&self, family: &Family) -> String {
        format!("{}:g:{{{family}}}", self.prefix)
    }

    fn epoch_key(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// The highest commit position of the writes announced so far. It has
    /// no TTL: only eviction or a restart loses it (then it is put back
    /// from the primary's).
    fn position_key(&self) -> String {
        format!("{}:position", self.prefix)
    }

    /// Moves the shared commit position forward to include `position`.
    pub async fn merge_position(&self, position: &Position) -> Result<(), L2Error> {
        let key = self.position_key();
        let text = position.to_string();
        self.run_within("position", self.invalidation_timeout(), |conn| async move {
            self.eval_with(conn, &self.merge_position, &key, text.as_str())
                .await?;
            Ok(())
        })
        .await
    }

    /// Notes a committed write's position in the shared one. If Redis is
    /// full (`noeviction`) it is deleted instead (deleting is allowed when
    /// full): a lost position is taken from the primary again, which is at
    /// least as far.
    async fn record_position(&self, position: &Position) -> Result<(), L2Error> {
        match self.merge_position(position).await {
            Err(err) if !err.is_connection_error() => {
                let key = self.position_key();
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
    pub async fn fetch(&self, key: &Key) -> Result<Fetched, L2Error> {
        let mut generation_keys = vec![self.epoch_key()];
        generation_keys.extend(key.shared.iter().map(|f| self.generation_key(f)));
        let entry_key = self.entry_key(key);
        let position_key = self.position_key();
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
                let created = missing
                    .iter()
                    .map(|&i| self.eval(conn.clone(), &self.read_generation, &generation_keys[i]));
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
    ) -> Result<(), L2Error> {
        let (payload, ttl) = match &loaded.entry {
            Some(entry) => (entry.encode(), self.ttl),
            None => (MISSING.to_vec(), self.negative_ttl),
        };
        let bytes = encode(generations, &loaded.families, &payload);
        let entry_key = self.entry_key(key);
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
    pub async fn bump(&self, families: &[Family], bump: Bump, position: Option<&Position>) {
        let keys: Vec<String> = families
            .iter()
            .filter(|f| f.is_shared())
            .map(|f| self.generation_key(f))
            .collect();
        if self.is_dirty() {
            if self
                .publish(invalidation_message(families, bump, position))
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
                    .map(|k| self.eval(conn.clone(), &self.bump_generation, k));
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
            .publish(invalidation_message(families, bump, position))
            .await;
        if bumped.is_err() || published.is_err() {
            self.mark_dirty();
        }
    }

    /// Publishes on the channel; on a cluster, where a message published on
    /// any node reaches the subscribers of every node, through the next
    /// configured node if the one chosen does not answer.
    async fn publish(&self, message: String) -> Result<(), L2Error> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.channel).arg(message);
        let published = self.run_on("publish", &cmd, None).await;
        if published.is_ok() {
            return Ok(());
        }
        for node in &self.cluster_nodes {
            if self.run_on("publish", &cmd, Some(node)).await.is_ok() {
                return Ok(());
            }
        }
        published.map(drop)
    }

    /// Runs a command that any node can take, on `node` if given (a
    /// cluster's), within a heartbeat.
    async fn run_on(
        &self,
        op: &'static str,
        cmd: &Cmd,
        node: Option<&(String, u16)>,
    ) -> Result<Value, L2Error> {
        self.run_within(op, self.invalidation_timeout(), |conn| async move {
            Ok(match (conn, node) {
                (Conn::Cluster(mut conn), Some((host, port))) => {
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    conn.route_command(cmd.clone(), routing).await?
                }
                (mut conn, _) => cmd.query_async(&mut conn).await?,
            })
        })
        .await
    }

    /// On a cluster, checks that it serves every slot; when that changes,
    /// says so, and while it does not, the tier is off (its invalidations
    /// count as lost, so the epoch moves once it is whole again).
    pub async fn check_cluster(&self) {
        if self.cluster_nodes.is_empty() {
            return;
        }
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("INFO");
        let mut whole = false;
        for node in &self.cluster_nodes {
            let info = self.run_on("cluster_info", &cmd, Some(node)).await;
            if let Some(info) = info
                .ok()
                .and_then(|v| redis::from_redis_value::<String>(v).ok())
            {
                whole = info.contains("cluster_state:ok");
                break;
            }
        }
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

    fn note_refusal(&self, err: &L2Error) {
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
    pub async fn recover(&self) -> Result<(), L2Error> {
        if !self.is_dirty() || !self.is_whole() {
            return Ok(());
        }
        let epoch = self.epoch_key();
        self.run_within("recover", self.invalidation_timeout(), |conn| async move {
            self.eval(conn, &self.bump_generation, &epoch).await?;
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
        super::sync::heartbeat_timeout(self.timeout)
    }

    /// A round trip for readiness, allowed as long as a heartbeat: one slow
    /// reply on a loaded machine is not an outage.
    pub async fn ping(&self) -> Result<(), L2Error> {
        self.run_within("ping", self.invalidation_timeout(), |mut conn| async move {
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok(())
        })
        .await
    }

    /// Runs a one-key script by its hash, sending its text if the server
    /// (or the cluster node owning the key) does not know it yet.
    async fn eval(&self, conn: Conn, script: &OneKeyScript, key: &str) -> Result<Vec<u8>, L2Error> {
        self.eval_with(conn, script, key, self.generation_ttl_ms)
            .await
    }

    /// [`L2::eval`] with another argument than the generations' TTL.
    async fn eval_with(
        &self,
        mut conn: Conn,
        script: &OneKeyScript,
        key: &str,
        arg: impl redis::ToRedisArgs + Copy,
    ) -> Result<Vec<u8>, L2Error> {
        let run = |command: &str, body: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(body).arg(1).arg(key).arg(arg);
            cmd
        };
        let value = match run("EVALSHA", &script.hash)
            .query_async::<Value>(&mut conn)
            .await
        {
            Err(err)
                if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                run("EVAL", script.text).query_async(&mut conn).await?
            }
            other => other?,
        };
        Ok(match value {
            Value::BulkString(bytes) => bytes,
            Value::SimpleString(text) => text.into_bytes(),
            Value::Int(n) => n.to_string().into_bytes(),
            _ => Vec::new(),
        })
    }
}

/// A Lua script of one key (and a TTL argument), by hash and text.
struct OneKeyScript {
    text: &'static str,
    hash: String,
}

impl OneKeyScript {
    fn new(text: &'static str) -> Self {
        Self {
            text,
            hash: redis::Script::new(text).get_hash().to_owned(),
        }
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
) -> Result<(Vec<Option<Vec<u8>>>, Option<Vec<u8>>, Option<Vec<u8>>), L2Error> {
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
        Ok::<_, L2Error>((generations, position))
    };
    let (read, entry) = tokio::join!(generations_then_position, get(conn.clone(), entry_key));
    let (generations, position) = read?;
    Ok((generations, position, entry?))
}

async fn get(mut conn: Conn, key: &str) -> Result<Option<Vec<u8>>, L2Error> {
    Ok(redis::cmd("GET").arg(key).query_async(&mut conn).await?)
}

async fn del(mut conn: Conn, key: &str) -> Result<(), L2Error> {
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

fn parse_generation(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// `bump` or `commit`, then a committed write's position as `@position`,
/// then one family per line; see `sync`.
fn invalidation_message(families: &[Family], bump: Bump, position: Option<&Position>) -> String {
    let mut message = String::from(match bump {
        Bump::Pending => "bump",
        Bump::Committed => "commit",
    });
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
fn encode(generations: &Generations, families: &[Family], payload: &[u8]) -> Vec<u8> {
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
fn decode(bytes: &[u8], current: &Generations) -> Option<(Loaded, i64)> {
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

fn now_millis() -> i64 {
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
    fn messages_name_the_kind_of_bump_and_each_family() {
        let families = [Family::Article(1), Family::Tag("rust".into())];
        assert_eq!(
            invalidation_message(&families, Bump::Committed, None),
            "commit\na:1\nt:rust"
        );
        assert_eq!(
            invalidation_message(&families[..1], Bump::Pending, None),
            "bump\na:1"
        );
        let position: Position = "0-11-42".parse().unwrap();
        assert_eq!(
            invalidation_message(&families[..1], Bump::Committed, Some(&position)),
            "commit\n@0-11-42\na:1"
        );
    }
}
