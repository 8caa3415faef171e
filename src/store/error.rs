use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Why the database could not be used, kept whole for the log.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

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
    /// The change would leave no admin; nothing was written.
    #[error("the last admin cannot be demoted")]
    LastAdmin,
    /// A list's `after` names no article that the list could hold.
    #[error("unknown cursor")]
    UnknownCursor,
    /// The database kept rolling the write back to break deadlocks or lock
    /// waits; nothing was written and a later retry should succeed.
    #[error("the write kept losing lock contention")]
    Contended,
    /// The database cannot be reached, has no free connection, or does not
    /// answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The connection failed while the database was committing a write (or
    /// just after): it may have been made. Nothing can tell; the caller
    /// treats it as made (what it changed is made stale) and answers 503.
    #[error("the database did not confirm a commit: {0}")]
    CommitUnknown(#[source] Cause),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the database folder: {0}")]
    CreateDir(#[source] std::io::Error),
    /// An error that one load handed to every caller waiting on it.
    #[error(transparent)]
    Shared(Arc<StoreError>),
    /// The database settings cannot work (named as the operator sets them).
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    /// The server failed (as opposed to answering "not found", "taken" or
    /// the like): another server may answer the same query.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Database(_) | StoreError::Shared(_)
        )
    }
}

impl StoreError {
    /// An error from committing a write: losing the connection then leaves
    /// the commit unknown; anything the database answered means it rolled
    /// back.
    pub fn at_commit(err: sqlx::Error) -> Self {
        match StoreError::from(err) {
            StoreError::Unavailable(cause) => StoreError::CommitUnknown(cause),
            other => other,
        }
    }

    /// Whether a connection broke under the call (reset, closed, refused),
    /// as opposed to the database timing out or refusing the statement.
    /// Nothing was committed, and the next connection from the pool is
    /// checked first: the call may be made again at once.
    pub fn is_broken_connection(&self) -> bool {
        let StoreError::Unavailable(cause) = self else {
            return false;
        };
        matches!(
            cause.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed)
        )
    }

    /// The database did not answer within `what`'s time limit.
    pub fn timed_out(what: &'static str) -> Self {
        StoreError::Unavailable(Arc::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            what,
        )))
    }

    /// Recovers an error that a single-flight load handed to every waiter:
    /// the kinds callers act on as themselves, anything else as shared,
    /// with its source.
    pub fn unshare(err: Arc<StoreError>) -> Self {
        Arc::try_unwrap(err).unwrap_or_else(|shared| match &*shared {
            StoreError::NotFound => StoreError::NotFound,
            StoreError::UnknownCursor => StoreError::UnknownCursor,
            StoreError::Contended => StoreError::Contended,
            StoreError::Unavailable(cause) => StoreError::Unavailable(cause.clone()),
            _ => StoreError::Shared(shared),
        })
    }
}

/// MariaDB/MySQL: the transaction was rolled back to break a deadlock
/// (1213) or waited too long for a lock (1205).
const MYSQL_DEADLOCK: u16 = 1213;
const MYSQL_LOCK_WAIT_TIMEOUT: u16 = 1205;
/// SQLite: the database (or a table) is locked by another connection.
const SQLITE_BUSY_OR_LOCKED: [&str; 4] = ["5", "6", "261", "517"];

fn is_contention(db: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(mysql.number(), MYSQL_DEADLOCK | MYSQL_LOCK_WAIT_TIMEOUT);
    }
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && db
            .code()
            .is_some_and(|code| SQLITE_BUSY_OR_LOCKED.contains(&code.as_ref()))
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
                StoreError::Duplicate
            }
            sqlx::Error::Database(db) if is_contention(db.as_ref()) => StoreError::Contended,
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => {
                connection_failed();
                StoreError::Unavailable(Arc::new(err))
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(Arc::new(err))
            }
            _ => StoreError::Database(err),
        }
    }
}

/// When a connection to a database last failed, in milliseconds since
/// [`clock_start`] (0: never). Pooled connections are used unchecked while
/// the database has been answering; for a while after one failed (a server
/// restarted, a network cut), each is checked before use, so that the
/// others that broke with it are not handed to requests.
static CONNECTION_FAILED_AT: AtomicU64 = AtomicU64::new(0);

/// How long after a failed connection pooled ones are checked before use.
const CHECK_AFTER_FAILURE: Duration = Duration::from_secs(10);

fn clock_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn connection_failed() {
    let now = clock_start().elapsed().as_millis() as u64;
    CONNECTION_FAILED_AT.store(now.max(1), Ordering::Relaxed);
}

/// Whether a connection failed within [`CHECK_AFTER_FAILURE`].
pub(super) fn connection_failed_recently() -> bool {
    let at = CONNECTION_FAILED_AT.load(Ordering::Relaxed);
    at != 0
        && clock_start().elapsed().as_millis() as u64 <= at + CHECK_AFTER_FAILURE.as_millis() as u64
}
