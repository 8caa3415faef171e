//! The application state shared by every request.

use std::ops::Deref;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::auth::Auth;
use crate::cache::Cache;
use crate::config::Settings;
use crate::ratelimit::RateLimiter;
use crate::reads::Reader;
use crate::redis_link::{RedisLink, SetupError};
use crate::store::{Store, StoreError};
use crate::telemetry::{self, RequestLog};
use crate::writes::Writer;

/// How often idle in-process rate-limit buckets are dropped.
const IDLE_BUCKET_SWEEP: Duration = Duration::from_secs(60);

/// How often a database known to be down is probed.
const DATABASE_PROBE: Duration = Duration::from_millis(500);

pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub auth: Auth,
    pub cache: Arc<Cache>,
    pub reader: Reader,
    pub writer: Writer,
    /// `None` when rate limiting is off.
    pub limiter: Option<RateLimiter>,
    /// Where request lines go.
    pub request_log: RequestLog,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Redis(#[from] SetupError),
}

/// A cheap handle to the [`App`]; axum's state type.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    /// Connects to the database, applies migrations and sets up the cache
    /// (with Redis, its invalidation subscriber starts in the background);
    /// request lines go to the log `telemetry::init` started, if any.
    pub async fn start(settings: Settings) -> Result<AppState, StartError> {
        Self::start_logging_to(settings, telemetry::request_log()).await
    }

    /// [`App::start`], with request lines going to `request_log`.
    pub async fn start_logging_to(
        settings: Settings,
        request_log: RequestLog,
    ) -> Result<AppState, StartError> {
        crate::metrics::handle();
        let store = Store::connect(&settings.database).await?;
        store.migrate().await?;
        // A read waits for the database as long as for a connection.
        let load_timeout = Duration::from_millis(settings.database.acquire_timeout_ms);
        let link = RedisLink::new(&settings.redis)?.map(Arc::new);
        let cache = Arc::new(Cache::new(&settings.cache, link.clone(), load_timeout));
        watch_positions(&store, &cache).await;
        let auth = Auth::new(&settings.auth);
        let reader = Reader::new(store.clone(), cache.clone());
        let writer = Writer::new(store.clone(), cache.clone(), reader.clone());
        let limiter = limiter(&settings, link);
        let app = Arc::new(App {
            settings,
            store,
            auth,
            cache,
            reader,
            writer,
            limiter,
            request_log,
        });
        forget_idle_buckets(Arc::downgrade(&app));
        probe_database(Arc::downgrade(&app));
        Ok(AppState(app))
    }
}

/// With replicas, fills wait for commit positions: this instance starts
/// from the primary's (nothing older than what it migrated, nor than any
/// write acknowledged before it started), and the cache asks the primary
/// again if Redis loses the shared position.
async fn watch_positions(store: &Store, cache: &Cache) {
    if store.replica_statuses().is_empty() {
        return;
    }
    if let Ok(Some(position)) = store.primary_position().await {
        cache.note_position(&position);
    }
    let store = store.clone();
    cache.set_position_source(Some(Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.primary_position().await.ok().flatten() })
    })));
}

fn limiter(settings: &Settings, link: Option<Arc<RedisLink>>) -> Option<RateLimiter> {
    let limits = &settings.rate_limit;
    limits.enabled.then(|| {
        RateLimiter::new(
            limits,
            settings.rate_limit.trusted_proxies.clone(),
            link,
            &settings.cache.redis_prefix,
            Duration::from_millis(settings.cache.redis_timeout_ms),
        )
    })
}

/// While a read has found the database unavailable, pings it twice a
/// second and tells the cache when it answers again (until then, reads
/// with a stale entry serve it without waiting); stops with the app.
fn probe_database(app: Weak<App>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(DATABASE_PROBE);
        loop {
            ticks.tick().await;
            let Some(app) = app.upgrade() else { return };
            if app.cache.database_is_down() && app.store.ping().await.is_ok() {
                tracing::info!("the database answers again");
                app.cache.database_is_back();
            }
        }
    });
}

/// Drops full in-process buckets every minute, so one-off clients do not
/// accumulate; stops with the app.
fn forget_idle_buckets(app: Weak<App>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(IDLE_BUCKET_SWEEP);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(app) = app.upgrade() else { return };
            if let Some(limiter) = &app.limiter {
                limiter.forget_idle();
            }
        }
    });
}
