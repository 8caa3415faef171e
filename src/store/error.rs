/// What can go wrong talking to the database, in the terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key (username, slug) is taken.
    #[error("duplicate key")]
    Duplicate,
    /// The row changed since the caller read it (optimistic concurrency).
    #[error("version mismatch")]
    Stale,
    /// The database cannot be reached or has no free connection.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the database folder: {0}")]
    CreateDir(#[source] std::io::Error),
    /// An error shared by several callers of one load, described.
    #[error("{0}")]
    Shared(String),
}

impl StoreError {
    /// Recovers an error that a single-flight load handed to every waiter.
    pub fn unshare(err: std::sync::Arc<StoreError>) -> Self {
        std::sync::Arc::try_unwrap(err).unwrap_or_else(|shared| match &*shared {
            StoreError::NotFound => StoreError::NotFound,
            StoreError::Unavailable(cause) => StoreError::Unavailable(cause.clone()),
            other => StoreError::Shared(other.to_string()),
        })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
                StoreError::Duplicate
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
            _ => StoreError::Database(err),
        }
    }
}
