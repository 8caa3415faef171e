//! The tiered cache of finished responses: L1 in process (moka), L2 shared
//! (Redis), the store behind them.
//!
//! Coherence, in brief (details in `stamp`, `l2` and `sync`):
//! - a write bumps the generations of the families it touches before it
//!   commits and again after, locally, in Redis, and on the pub/sub channel;
//! - a load reads the clock of generations before anything else (its
//!   fence), and its entry is stamped with every family it depends on,
//!   those its request names and those its content names (the articles a
//!   list page shows), refused if any moved since the fence, and served
//!   only while its stamp is current: a load that raced a write is never
//!   served after it;
//! - an L2 entry carries the generations of its request's (coarser, shared)
//!   families it was filled under and is trusted only while Redis' still
//!   match;
//! - concurrent misses on one key load once, and a missing resource is
//!   cached briefly too;
//! - while the database is down, an entry that no committed write has
//!   touched serves as stale-if-error, at once once the outage is known.

mod entry;
mod flight;
#[cfg(feature = "test-hooks")]
pub mod hooks;
mod key;
mod l1;
mod l2;
mod positions;
mod purge;
mod stamp;
mod sync;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use crate::labels::{RouteFamily, Tier};
pub use entry::{Coding, Entry, entity_tag};
pub use key::{Families, Family, FeedName, Key, Order};
pub use l1::Cached;

use crate::config::CacheSettings;
use crate::redis_link::RedisLink;
use crate::store::{Freshness, Position, StoreError};
use crate::telemetry;
use flight::Flights;
use l1::L1;
use l2::{L2, L2Settings};
use positions::Positions;
use purge::Purger;
use stamp::{Fence, Generations};

/// Fresh loads tried when writes keep invalidating the key being loaded,
/// before one is served uncached.
const LOAD_ATTEMPTS: usize = 3;

/// The primary's current commit position (`None` if it cannot be had): asked
/// when Redis has lost the shared position, which is then put back.
pub type PositionSource =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Position>> + Send>> + Send + Sync>;

/// What a load read: the response (`None`: no such resource) and the
/// families its content adds to those its key names, such as the articles
/// a list page shows (they fence the local copy only).
#[derive(Debug, Default)]
pub struct Loaded {
    pub entry: Option<Entry>,
    pub families: Vec<Family>,
}

impl From<Option<Entry>> for Loaded {
    fn from(entry: Option<Entry>) -> Self {
        Self {
            entry,
            families: Vec::new(),
        }
    }
}

/// What the in-process tier holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L1Usage {
    pub entries: u64,
    /// As weighed against `cache.l1_max_bytes`.
    pub bytes: u64,
}

/// How the shared tier is doing, for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisHealth {
    Ok,
    /// Unreachable, the invalidation channel is down, or a cluster does
    /// not serve every slot.
    Down,
    /// Reachable but refusing writes (full); invalidations still hold.
    Full,
}

pub struct Cache {
    l1: L1,
    l2: Option<Arc<L2>>,
    generations: Arc<Generations>,
    flights: Flights,
    /// False while Redis is configured but the invalidation channel is down.
    subscribed: Arc<AtomicBool>,
    /// True from a load that found the database unavailable until a probe
    /// finds it back: stale entries then serve without waiting for it.
    database_down: AtomicBool,
    purger: Option<Purger>,
    ttl: Duration,
    stale_if_error: Duration,
    degraded_ttl: Duration,
    /// How long a load may wait for the store before the database counts
    /// as unavailable (a paused server answers nothing and refuses nothing).
    load_timeout: Duration,
    loads: AtomicU64,
    /// The highest commit position heard of; see `positions`.
    positions: Arc<Positions>,
    position_source: RwLock<Option<PositionSource>>,
    #[cfg(feature = "test-hooks")]
    pub hooks: hooks::Hooks,
}

impl Cache {
    /// Builds the tiers. With Redis configured, also starts the
    /// invalidation subscriber (needs a Tokio runtime).
    pub fn new(
        settings: &CacheSettings,
        link: Option<Arc<RedisLink>>,
        load_timeout: Duration,
    ) -> Self {
        let ttl = Duration::from_secs(settings.ttl_secs);
        let stale_if_error = Duration::from_secs(settings.stale_if_error_secs);
        let negative_ttl = Duration::from_secs(settings.negative_ttl_secs);
        let generations = Arc::new(Generations::default());
        let positions = Arc::new(Positions::default());
        let subscribed = Arc::new(AtomicBool::new(link.is_none()));
        let l2 = link.map(|link| {
            let timeout = Duration::from_millis(settings.redis_timeout_ms);
            let l2 = Arc::new(L2::new(L2Settings {
                link: link.clone(),
                prefix: &settings.redis_prefix,
                timeout,
                ttl: ttl + stale_if_error,
                negative_ttl,
            }));
            let subscriber = sync::Subscriber {
                link,
                generations: generations.clone(),
                positions: positions.clone(),
                l2: l2.clone(),
                connected: subscribed.clone(),
                timeout: l2::heartbeat_timeout(timeout),
            };
            tokio::spawn(subscriber.run());
            l2
        });
        let purger = settings.purge_url.clone().map(Purger::new);
        Self {
            l1: l1::build(settings.l1_max_bytes, ttl + stale_if_error, negative_ttl),
            l2,
            generations,
            flights: Flights::default(),
            subscribed,
            database_down: AtomicBool::new(false),
            purger,
            ttl,
            stale_if_error,
            degraded_ttl: Duration::from_millis(settings.degraded_ttl_ms),
            load_timeout,
            loads: AtomicU64::new(0),
            positions,
            position_source: RwLock::new(None),
            #[cfg(feature = "test-hooks")]
            hooks: hooks::Hooks::default(),
        }
    }

    /// The cached response for `key`, loading it with `load` on a miss;
    /// `load` reads at the [`Freshness`] it is given (what the fill must
    /// see: every write this instance or Redis knows of).
    ///
    /// A hit is decided here, before anything else is set up; the miss
    /// path's much larger state lives behind one allocation, so a hit's
    /// future, and every future that awaits it, stays small.
    pub async fn get_or_load<F, Fut>(&self, key: &Key, load: F) -> Result<Arc<Cached>, StoreError>
    where
        F: Fn(Freshness) -> Fut,
        Fut: Future<Output = Result<Loaded, StoreError>>,
    {
        let found = self.l1.get(key.name.as_str()).await;
        if let Some(cached) = found
            .as_ref()
            .filter(|cached| self.is_current(cached) && self.is_fresh(cached))
        {
            crate::metrics::cache_lookup(Tier::L1, key.route, true);
            telemetry::answered_by(Tier::L1);
            return Ok(cached.clone());
        }
        Box::pin(self.miss(key, found, load)).await
    }

    /// An L1 miss, or an entry that is stale or was loaded before a write:
    /// load it (once, however many ask at the same time), or serve what is
    /// left if the database is down. The entry found stays in L1 until a
    /// load replaces it, so every reader that finds it during an outage can
    /// serve it.
    async fn miss<F, Fut>(
        &self,
        key: &Key,
        found: Option<Arc<Cached>>,
        load: F,
    ) -> Result<Arc<Cached>, StoreError>
    where
        F: Fn(Freshness) -> Fut,
        Fut: Future<Output = Result<Loaded, StoreError>>,
    {
        crate::metrics::cache_lookup(Tier::L1, key.route, false);
        // Past its fresh time, but no write committed since it was loaded:
        // it still shows the committed state, if the database is down.
        let stale = found.filter(|cached| self.is_current(cached));
        if let Some(cached) = &stale
            && self.database_down.load(Ordering::Acquire)
            && self.within_stale_window(cached)
        {
            return Ok(self.served_stale(cached.clone()));
        }
        for attempt in 1..=LOAD_ATTEMPTS {
            let (result, loaded_here) = self
                .flights
                .run(&key.name, || async {
                    // Boxed: Redis' and the store's futures are large.
                    let cached = Box::pin(self.load(key, &load)).await?;
                    if cached.stamp.is_some() {
                        self.l1.insert(key.name.clone(), cached.clone()).await;
                    }
                    Ok(cached)
                })
                .await;
            if !loaded_here {
                crate::metrics::single_flight_wait(key.route);
                telemetry::answered_by(Tier::L1);
            }
            match result {
                // Stamped: no write landed while it loaded.
                Ok(cached) if cached.stamp.is_some() || attempt == LOAD_ATTEMPTS => {
                    return Ok(cached);
                }
                // A write landed while it loaded: it may hold the old state.
                Ok(_) => {}
                Err(err) => return self.serve_stale(stale, err),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// On a database outage, an entry past its fresh time may still serve
    /// within the stale-if-error window; the outage is noted, so the next
    /// readers do not wait for the database.
    fn serve_stale(
        &self,
        stale: Option<Arc<Cached>>,
        err: Arc<StoreError>,
    ) -> Result<Arc<Cached>, StoreError> {
        if matches!(*err, StoreError::Unavailable(_)) {
            self.database_down.store(true, Ordering::Release);
        }
        match stale {
            Some(cached)
                if matches!(*err, StoreError::Unavailable(_))
                    && self.within_stale_window(&cached) =>
            {
                Ok(self.served_stale(cached))
            }
            _ => Err(StoreError::unshare(err)),
        }
    }

    fn served_stale(&self, cached: Arc<Cached>) -> Arc<Cached> {
        crate::metrics::stale_served();
        telemetry::answered_by(Tier::Stale);
        cached
    }

    fn within_stale_window(&self, cached: &Cached) -> bool {
        self.age(cached) < self.ttl + self.stale_if_error
    }

    fn is_current(&self, cached: &Cached) -> bool {
        cached
            .stamp
            .as_ref()
            .is_some_and(|stamp| self.generations.is_current(stamp))
    }

    fn is_fresh(&self, cached: &Cached) -> bool {
        let age = self.age(cached);
        // Without the invalidation channel, other instances' writes go
        // unheard: only very young entries are trusted.
        let limit = if self.is_subscribed() {
            self.ttl
        } else {
            self.degraded_ttl
        };
        age < limit
    }

    /// The cache's clock: what freshness and the stale window are measured
    /// by (tests move it forward instead of waiting).
    fn now(&self) -> Instant {
        #[cfg(feature = "test-hooks")]
        return Instant::now() + self.hooks.skipped();
        #[cfg(not(feature = "test-hooks"))]
        Instant::now()
    }

    /// Wall-clock time in epoch milliseconds, by the same clock: the
    /// shared tier's entries are stamped with it.
    fn wall_millis(&self) -> i64 {
        let now = crate::domain::time::now().timestamp_millis();
        #[cfg(feature = "test-hooks")]
        let now = now + i64::try_from(self.hooks.skipped().as_millis()).unwrap_or(0);
        now
    }

    fn age(&self, cached: &Cached) -> Duration {
        self.now().saturating_duration_since(cached.loaded_at)
    }

    /// Whether a load found the database unavailable and no probe has
    /// found it back since.
    pub fn database_is_down(&self) -> bool {
        self.database_down.load(Ordering::Acquire)
    }

    /// A probe found the database answering again.
    pub fn database_is_back(&self) {
        self.database_down.store(false, Ordering::Release);
    }

    /// L2, then the store; fills L2 on the way back. The entry is stamped
    /// with every family it depends on, unless one moved since `fence`.
    async fn load<F, Fut>(&self, key: &Key, load: &F) -> flight::Outcome
    where
        F: Fn(Freshness) -> Fut,
        Fut: Future<Output = Result<Loaded, StoreError>>,
    {
        // Taken before anything is read: the fence against racing writes.
        let fence = self.generations.fence();
        // Read after the fence: see `positions`.
        let mut freshness = self.local_freshness();
        let mut stale = None;
        let mut fill = None;
        if let Some(l2) = self.reachable_l2()
            && let Ok(fetched) = l2.fetch(key).await
        {
            freshness = self
                .with_shared_position(l2, freshness, fetched.position)
                .await;
            fill = fetched.generations;
            let value = fetched.value.map(|(loaded, stored_at)| {
                let age = self.wall_millis().saturating_sub(stored_at);
                (
                    loaded,
                    Duration::from_millis(u64::try_from(age).unwrap_or(0)),
                )
            });
            let fresh = value.as_ref().is_some_and(|(_, age)| *age < self.ttl);
            crate::metrics::cache_lookup(Tier::L2, key.route, fresh);
            if let Some((loaded, age)) = value {
                let now = self.now();
                let loaded_at = now.checked_sub(age).unwrap_or(now);
                let cached = self.stamped(key, fence, loaded, loaded_at);
                if fresh {
                    telemetry::answered_by(Tier::L2);
                    return Ok(cached);
                }
                stale = Some(cached);
            }
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        crate::metrics::cache_fill(key.route);
        telemetry::answered_by(Tier::Db);
        let loaded = tokio::time::timeout(self.load_timeout, load(freshness))
            .await
            .unwrap_or_else(|_| Err(StoreError::timed_out("the database did not answer in time")));
        let loaded = match loaded {
            // Compressed variants are made on request (`Entry::variant`).
            Ok(loaded) => loaded,
            Err(err) => return self.serve_stale(stale, Arc::new(err)).map_err(Arc::new),
        };
        self.database_is_back();
        #[cfg(feature = "test-hooks")]
        self.hooks.before_fill(key).await;
        if let (Some(l2), Some(generations)) = (self.reachable_l2(), fill) {
            let _ = l2.store(key, &generations, &loaded).await;
        }
        Ok(self.stamped(key, fence, loaded, self.now()))
    }

    fn stamped(&self, key: &Key, fence: Fence, loaded: Loaded, loaded_at: Instant) -> Arc<Cached> {
        let families = key.local.iter().chain(&loaded.families);
        Arc::new(Cached {
            stamp: self.generations.stamp(fence, families),
            entry: loaded.entry,
            loaded_at,
        })
    }

    /// Makes every cached response of these families stale, here and (via
    /// Redis) everywhere, once a write that touched them has committed (and
    /// before it answers). Never fails: what Redis could not take is
    /// recorded and repaired by an epoch bump once Redis answers again.
    ///
    /// Nothing is made stale before the commit: until then the cached state
    /// is the committed one, which anyone may read before the write answers,
    /// and entries keep serving (and fills keep succeeding) while writes are
    /// in flight.
    ///
    /// The local generations move before Redis' and again after: a reader
    /// here that took its fence in between could otherwise fetch from Redis
    /// an entry filled from the state before the write, under generations
    /// Redis has not moved yet, and keep it past the write's answer.
    pub async fn invalidate(&self, families: &[Family]) {
        self.invalidate_at(families, None).await;
    }

    /// [`Cache::invalidate`] for a write committed at `position`, which is
    /// noted before the bump, here and in Redis, and travels with the
    /// message: a fill that sees the bump waits for the position.
    pub async fn invalidate_at(&self, families: &[Family], position: Option<&Position>) {
        if let Some(position) = position {
            self.positions.note(position);
        }
        self.generations.bump(families);
        crate::metrics::invalidations_sent(families.len());
        if let Some(l2) = &self.l2 {
            if self.is_subscribed() {
                #[cfg(feature = "test-hooks")]
                self.hooks.before_shared_bump(families).await;
                l2.bump(families, position).await;
                self.generations.bump(families);
                if l2.is_dirty() {
                    // Redis is reachable but did not take the bump: move
                    // everyone to a new epoch before this write answers,
                    // rather than at the next heartbeat.
                    let _ = l2.recover().await;
                }
            } else {
                // Known unreachable: don't wait for a timeout; the epoch bump
                // on reconnection covers what this write could not announce.
                l2.mark_dirty();
            }
        }
    }

    /// Makes every cached response stale, here and everywhere: for a write
    /// whose commit is unknown, whose exact changes nobody can tell. Local
    /// copies go at once; shared ones and other instances' by a new epoch
    /// now, or when Redis answers again.
    pub async fn invalidate_all(&self) {
        self.generations.bump_epoch();
        crate::metrics::invalidations_sent(1);
        if let Some(l2) = &self.l2 {
            l2.mark_dirty();
            if self.is_subscribed() {
                let _ = l2.recover().await;
                self.generations.bump_epoch();
            }
        }
    }

    /// What a fill must see without Redis' word: every write heard of here;
    /// or, while Redis is configured but out of reach (other instances'
    /// writes go unheard), every committed write.
    fn local_freshness(&self) -> Freshness {
        if self.l2.is_some() && self.reachable_l2().is_none() {
            return Freshness::Latest;
        }
        Freshness::AtLeast(self.positions.highest())
    }

    /// `freshness` moved on to Redis' position (read after the
    /// generations). If Redis lost it, it is put back from the primary's;
    /// if that cannot be had either, the fill reads the primary.
    async fn with_shared_position(
        &self,
        l2: &L2,
        freshness: Freshness,
        shared: Option<Position>,
    ) -> Freshness {
        let shared = match shared {
            Some(position) => position,
            None => {
                let source = self.position_source.read().expect("not poisoned").clone();
                let Some(source) = source else {
                    return freshness;
                };
                let Some(position) = source().await else {
                    return Freshness::Latest;
                };
                let _ = l2.merge_position(&position).await;
                position
            }
        };
        match freshness {
            Freshness::AtLeast(mut position) => {
                position.merge(&shared);
                Freshness::AtLeast(position)
            }
            Freshness::Latest => Freshness::Latest,
        }
    }

    /// Notes a commit position heard of outside this instance's writes
    /// (the primary's at start).
    pub fn note_position(&self, position: &Position) {
        self.positions.note(position);
    }

    /// The highest commit position this instance has heard of.
    pub fn highest_position(&self) -> Position {
        self.positions.highest()
    }

    /// Where to ask for the primary's position when Redis has lost the
    /// shared one.
    pub fn set_position_source(&self, source: Option<PositionSource>) {
        *self.position_source.write().expect("not poisoned") = source;
    }

    /// Asks the CDN to purge what a committed write made stale, in the
    /// background.
    pub fn purge(&self, families: &[Family]) {
        if let Some(purger) = &self.purger {
            purger.purge(families.iter().filter_map(Family::surrogate_key).collect());
        }
    }

    /// L2, unless Redis is known to be unreachable (its channel is down) or
    /// may lack one of this instance's invalidations.
    fn reachable_l2(&self) -> Option<&L2> {
        self.l2
            .as_deref()
            .filter(|l2| self.is_subscribed() && !l2.is_dirty())
    }

    /// How the shared tier is doing (`None` when no Redis is configured).
    pub async fn redis_health(&self) -> Option<RedisHealth> {
        let l2 = self.l2.as_ref()?;
        Some(
            if l2.ping().await.is_err() || !self.is_subscribed() || !l2.is_whole() {
                RedisHealth::Down
            } else if l2.is_refusing_writes() {
                RedisHealth::Full
            } else {
                RedisHealth::Ok
            },
        )
    }

    /// What L1 holds now.
    pub fn l1_usage(&self) -> L1Usage {
        L1Usage {
            entries: self.l1.entry_count(),
            bytes: self.l1.weighted_size(),
        }
    }

    /// How many times a load reached the store.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// Whether the invalidation channel is up (always true without Redis).
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }
}
