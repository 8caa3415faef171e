//! Read replicas: which one a read runs on, and whether each is fit to
//! serve.
//!
//! The primary takes every write and every read made through [`Store`]'s own
//! methods (a write's reads, sign-in, token rotation, authorization). Reads
//! that may be served by a replica ask for a [`Reads`] handle first, naming
//! the commit position they must see: the handle is on a healthy replica
//! that has applied it (waiting up to `database.replica_wait_ms` with
//! `MASTER_GTID_WAIT`), or else on the primary. Whatever a replica does, a
//! read never fails because of it: a replica that cannot be reached, or that
//! errs, is left for the primary.
//!
//! A background check (`database.replica_check_ms`) reads each replica's
//! `SHOW REPLICA STATUS`: a replica that does not answer, whose replication
//! threads are stopped, or that is further behind than
//! `database.replica_max_lag_secs`, is out of rotation until a later check
//! finds it well again.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::{AnyPool, Row};

use super::{Position, Store, StoreError};
use crate::config::DatabaseSettings;

/// A check that takes longer than this finds the replica down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How a replica was at its last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaHealth {
    /// In rotation.
    Ok,
    /// Not checked yet (out of rotation until it is).
    Unknown,
    /// Does not answer, or failed a read since its last check.
    Down,
    /// Its replication threads are stopped, or it replicates from nothing.
    Stopped,
    /// Further behind than `database.replica_max_lag_secs`.
    Lagging,
}

impl ReplicaHealth {
    const ALL: [ReplicaHealth; 5] = [
        ReplicaHealth::Ok,
        ReplicaHealth::Unknown,
        ReplicaHealth::Down,
        ReplicaHealth::Stopped,
        ReplicaHealth::Lagging,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaHealth::Ok => "ok",
            ReplicaHealth::Unknown => "unknown",
            ReplicaHealth::Down => "down",
            ReplicaHealth::Stopped => "stopped",
            ReplicaHealth::Lagging => "lagging",
        }
    }
}

/// A replica as `/readyz` and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `host:port`, never the credentials.
    pub name: String,
    pub health: ReplicaHealth,
}

pub(super) struct Replica {
    pub(super) name: String,
    pub(super) store: Store,
    health: AtomicU8,
    /// A position this replica is known to have applied: reads that need
    /// no more skip the wait.
    applied: Mutex<Position>,
}

impl Replica {
    fn health(&self) -> ReplicaHealth {
        ReplicaHealth::ALL[usize::from(self.health.load(Ordering::Acquire))]
    }

    pub(super) fn set_health(&self, health: ReplicaHealth) {
        let index = ReplicaHealth::ALL
            .iter()
            .position(|h| *h == health)
            .unwrap_or(0);
        let before = self.health.swap(index as u8, Ordering::AcqRel);
        if before as usize != index {
            match health {
                ReplicaHealth::Ok => tracing::info!(replica = %self.name, "replica in rotation"),
                other => tracing::warn!(
                    replica = %self.name,
                    health = other.as_str(),
                    "replica out of rotation"
                ),
            }
        }
        crate::metrics::replica_in_rotation(&self.name, health == ReplicaHealth::Ok);
    }

    fn has_applied(&self, position: &Position) -> bool {
        self.applied.lock().expect("not poisoned").covers(position)
    }

    fn note_applied(&self, position: &Position) {
        self.applied.lock().expect("not poisoned").merge(position);
    }
}

/// The replicas of one primary and how reads are routed among them.
pub(super) struct Replicas {
    pub(super) servers: Vec<Replica>,
    next: AtomicUsize,
    wait: Duration,
    max_lag: Duration,
    /// What every replica read must see at least: the primary's position
    /// once migrations ran, so no read finds an older schema.
    floor: Mutex<Position>,
}

impl Replicas {
    pub(super) fn none() -> Self {
        Self {
            servers: Vec::new(),
            next: AtomicUsize::new(0),
            wait: Duration::ZERO,
            max_lag: Duration::ZERO,
            floor: Mutex::default(),
        }
    }

    /// Pools for each replica, connecting lazily: a replica that is down at
    /// start delays nothing and is found out by the first check.
    pub(super) fn open(primary: &Store, settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let mut servers = Vec::with_capacity(settings.replica_urls.len());
        for url in &settings.replica_urls {
            let pool = super::pool_options(
                settings.max_connections,
                settings.replica_acquire_timeout_ms,
            )
            .after_connect(|conn, _| Box::pin(super::prepare_mysql_session(conn)))
            .connect_lazy(url.expose())?;
            let name = server_name(url.expose());
            crate::metrics::replica_in_rotation(&name, false);
            servers.push(Replica {
                name,
                store: Store {
                    pool,
                    fill_pool: None,
                    dialect: primary.dialect,
                    replicas: Arc::new(Replicas::none()),
                    mariadb: primary.mariadb,
                },
                health: AtomicU8::new(1),
                applied: Mutex::default(),
            });
        }
        Ok(Self {
            servers,
            next: AtomicUsize::new(0),
            wait: Duration::from_millis(settings.replica_wait_ms),
            max_lag: Duration::from_secs(settings.replica_max_lag_secs),
            floor: Mutex::default(),
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    pub(super) fn set_floor(&self, position: Position) {
        *self.floor.lock().expect("not poisoned") = position;
    }

    pub(super) fn statuses(&self) -> Vec<ReplicaStatus> {
        self.servers
            .iter()
            .map(|replica| ReplicaStatus {
                name: replica.name.clone(),
                health: replica.health(),
            })
            .collect()
    }

    /// The index of the next replica in rotation, if any.
    fn pick(&self) -> Option<usize> {
        let count = self.servers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| (start + i) % count)
            .find(|&i| self.servers[i].health() == ReplicaHealth::Ok)
    }

    /// A replica in rotation that has applied `at_least` (and the floor),
    /// after waiting for it if need be; `None` if there is none.
    pub(super) async fn ready_replica(&self, at_least: Option<&Position>) -> Option<usize> {
        let index = self.pick()?;
        let replica = &self.servers[index];
        let mut needed = self.floor.lock().expect("not poisoned").clone();
        if let Some(position) = at_least {
            needed.merge(position);
        }
        if replica.has_applied(&needed) {
            return Some(index);
        }
        let waited = tokio::time::timeout(
            self.wait + CHECK_TIMEOUT,
            wait_for_position(&replica.store.pool, &needed, self.wait),
        )
        .await;
        match waited {
            Ok(Ok(true)) => {
                crate::metrics::replica_wait("reached");
                replica.note_applied(&needed);
                Some(index)
            }
            Ok(Ok(false)) => {
                crate::metrics::replica_wait("timed_out");
                None
            }
            Ok(Err(err)) => {
                crate::metrics::replica_wait("failed");
                tracing::warn!(replica = %replica.name, error = %err, "replica failed a wait");
                replica.set_health(ReplicaHealth::Down);
                None
            }
            Err(_) => {
                crate::metrics::replica_wait("failed");
                replica.set_health(ReplicaHealth::Down);
                None
            }
        }
    }

    /// Checks every replica now, in parallel.
    async fn check_all(&self) {
        let checks = self.servers.iter().map(|replica| async move {
            let checked = tokio::time::timeout(CHECK_TIMEOUT, check(&replica.store.pool)).await;
            let (health, lag) = match checked {
                Ok(Ok(status)) => {
                    if let Some(applied) = &status.applied {
                        replica.note_applied(applied);
                    }
                    (status.health(self.max_lag), status.lag)
                }
                Ok(Err(err)) => {
                    tracing::debug!(replica = %replica.name, error = %err, "replica check failed");
                    (ReplicaHealth::Down, None)
                }
                Err(_) => (ReplicaHealth::Down, None),
            };
            crate::metrics::replica_lag(&replica.name, lag);
            replica.set_health(health);
        });
        futures_util::future::join_all(checks).await;
    }
}

impl Store {
    /// Each replica and its health at the last check.
    pub fn replica_statuses(&self) -> Vec<ReplicaStatus> {
        self.replicas.statuses()
    }
}

/// Checks the replicas every `interval` for as long as a store uses them.
pub(super) fn spawn_checks(replicas: Weak<Replicas>, interval: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(replicas) = replicas.upgrade() else {
                return;
            };
            replicas.check_all().await;
        }
    });
}

/// What a replica said of its replication.
struct ReplicationStatus {
    io_running: bool,
    sql_running: bool,
    lag: Option<Duration>,
    applied: Option<Position>,
}

impl ReplicationStatus {
    fn health(&self, max_lag: Duration) -> ReplicaHealth {
        match self.lag {
            _ if !(self.io_running && self.sql_running) => ReplicaHealth::Stopped,
            None => ReplicaHealth::Stopped,
            Some(lag) if lag > max_lag => ReplicaHealth::Lagging,
            Some(_) => ReplicaHealth::Ok,
        }
    }
}

/// `SHOW REPLICA STATUS` and the replica's applied position.
async fn check(pool: &AnyPool) -> Result<ReplicationStatus, StoreError> {
    let mut conn = pool.acquire().await?;
    let row = sqlx::query("SHOW REPLICA STATUS")
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        // Not configured as a replica at all.
        return Ok(ReplicationStatus {
            io_running: false,
            sql_running: false,
            lag: None,
            applied: None,
        });
    };
    // MariaDB names the columns Slave_*, MySQL 8.4 Replica_*.
    let text = |names: [&str; 2]| -> Option<String> {
        names
            .iter()
            .find_map(|name| row.try_get::<Option<String>, _>(*name).ok().flatten())
    };
    let running = |names| text(names).is_some_and(|value| value == "Yes");
    let lag = ["Seconds_Behind_Master", "Seconds_Behind_Source"]
        .iter()
        .find_map(|name| row.try_get::<Option<i64>, _>(*name).ok())
        .flatten();
    let applied: Option<String> = sqlx::query_scalar("SELECT @@gtid_slave_pos")
        .fetch_one(&mut *conn)
        .await
        .ok();
    Ok(ReplicationStatus {
        io_running: running(["Slave_IO_Running", "Replica_IO_Running"]),
        sql_running: running(["Slave_SQL_Running", "Replica_SQL_Running"]),
        lag: lag.map(|secs| Duration::from_secs(u64::try_from(secs).unwrap_or(0))),
        applied: applied.and_then(|text| text.parse().ok()),
    })
}

/// Waits until the replica has applied `position`: `true` when it has,
/// `false` if `timeout` passed first.
async fn wait_for_position(
    pool: &AnyPool,
    position: &Position,
    timeout: Duration,
) -> Result<bool, StoreError> {
    let reached: Option<i64> = sqlx::query_scalar("SELECT MASTER_GTID_WAIT(?, ?)")
        .bind(position.to_string())
        .bind(timeout.as_secs_f64())
        .fetch_one(pool)
        .await?;
    Ok(reached == Some(0))
}

/// `host:port` of a MySQL URL, for logs, metrics and `/readyz`.
fn server_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_keep_host_and_port_and_never_credentials() {
        assert_eq!(
            server_name("mysql://app:s3cret@db-replica-1:3306/feedgate?ssl-mode=VERIFY_CA"),
            "db-replica-1:3306"
        );
        assert_eq!(server_name("mysql://127.0.0.1:3317/x"), "127.0.0.1:3317");
    }

    #[test]
    fn a_replica_is_fit_only_replicating_and_within_the_lag_limit() {
        let status = |io, sql, lag: Option<u64>| ReplicationStatus {
            io_running: io,
            sql_running: sql,
            lag: lag.map(Duration::from_secs),
            applied: None,
        };
        let limit = Duration::from_secs(5);
        assert_eq!(status(true, true, Some(5)).health(limit), ReplicaHealth::Ok);
        assert_eq!(
            status(true, true, Some(6)).health(limit),
            ReplicaHealth::Lagging
        );
        assert_eq!(
            status(true, false, Some(0)).health(limit),
            ReplicaHealth::Stopped
        );
        assert_eq!(
            status(false, true, Some(0)).health(limit),
            ReplicaHealth::Stopped
        );
        assert_eq!(
            status(true, true, None).health(limit),
            ReplicaHealth::Stopped
        );
    }
}
