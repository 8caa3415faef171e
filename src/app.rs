//! The application state shared by every request.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::Auth;
use crate::cache::{Cache, CacheError};
use crate::config::Settings;
use crate::http::CacheControl;
use crate::reads::Reader;
use crate::store::{Store, StoreError};
use crate::writes::Writer;

pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub auth: Auth,
    pub cache: Arc<Cache>,
    pub cache_control: CacheControl,
    pub reader: Reader,
    pub writer: Writer,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("FEEDGATE_CACHE__CONTROL__*: not a valid header value")]
    CacheControl(#[from] axum::http::header::InvalidHeaderValue),
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
    /// (with Redis, its invalidation subscriber starts in the background).
    pub async fn start(settings: Settings) -> Result<AppState, StartError> {
        crate::metrics::handle();
        let store = Store::connect(&settings.database).await?;
        store.migrate().await?;
        let cache = Arc::new(Cache::new(&settings.cache, &settings.redis)?);
        let cache_control = CacheControl::new(&settings.cache.control)?;
        let auth = Auth::new(&settings.auth);
        let reader = Reader::new(store.clone(), cache.clone());
        let writer = Writer::new(store.clone(), cache.clone());
        Ok(AppState(Arc::new(App {
            settings,
            store,
            auth,
            cache,
            cache_control,
            reader,
            writer,
        })))
    }
}
