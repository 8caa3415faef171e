//! The application state shared by every request.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::Auth;
use crate::config::Settings;
use crate::reads::Reader;
use crate::store::{Store, StoreError};

pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub auth: Auth,
    pub reader: Reader,
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
    /// Connects to the database and applies migrations.
    pub async fn start(settings: Settings) -> Result<AppState, StoreError> {
        let store = Store::connect(&settings.database).await?;
        store.migrate().await?;
        Ok(Self::with_store(settings, store))
    }

    pub fn with_store(settings: Settings, store: Store) -> AppState {
        let auth = Auth::new(&settings.auth);
        let reader = Reader::new(store.clone());
        AppState(Arc::new(App {
            settings,
            store,
            auth,
            reader,
        }))
    }
}
