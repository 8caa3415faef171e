//! One throwaway database per test: a SQLite file, or a MariaDB database on
//! the server named by `FEEDGATE_TEST_MYSQL_URL` (default root on localhost),
//! or one on the replicated primary (`FEEDGATE_TEST_PRIMARY_URL`, default
//! port 3316), which its replica (`FEEDGATE_TEST_REPLICA_URL`, default port
//! 3317) copies; `scripts/services.sh` starts both.

use std::path::PathBuf;

use rand::distr::{Alphanumeric, SampleString};
use sqlx::{Connection, MySqlConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

pub struct TestDb {
    url: String,
    /// The same database on the replica, for a replicated one.
    replica_url: Option<String>,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Database {
        server: String,
        name: String,
    },
    /// Another handle on a database that its first `TestDb` cleans up.
    Shared,
}

pub fn mysql_server() -> String {
    std::env::var("FEEDGATE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// The MariaDB primary with a binary log.
pub fn primary_server() -> String {
    std::env::var("FEEDGATE_TEST_PRIMARY_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3316".into())
}

/// The CA that signed the test servers' certificates (`scripts/services.sh`).
pub fn tls_ca() -> String {
    std::env::var("FEEDGATE_TEST_TLS_CA").unwrap_or_else(|_| {
        let dir = std::env::var("FEEDGATE_SERVICES_DIR")
            .unwrap_or_else(|_| "/tmp/feedgate-services".into());
        format!("{dir}/tls/ca.pem")
    })
}

/// sqlx's URL parameters that verify the server against [`tls_ca`].
pub fn tls_params() -> String {
    format!("ssl-mode=VERIFY_CA&ssl-ca={}", tls_ca())
}

/// A MariaDB that takes TLS connections only (`require_secure_transport`).
pub fn tls_server() -> String {
    std::env::var("FEEDGATE_TEST_TLS_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3318".into())
}

/// The replica of [`primary_server`].
pub fn replica_server() -> String {
    std::env::var("FEEDGATE_TEST_REPLICA_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3317".into())
}

/// `server` (which may carry URL parameters) with a database path.
fn database_url(server: &str, name: &str) -> String {
    match server.split_once('?') {
        Some((base, params)) => format!("{base}/{name}?{params}"),
        None => format!("{server}/{name}"),
    }
}

async fn create_database(server: &str, name: &str) {
    let mut conn = MySqlConnection::connect(server)
        .await
        .unwrap_or_else(|err| panic!("MariaDB at {server} must be running: {err}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("the test database is created");
}

fn random_suffix() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), 12)
        .to_lowercase()
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        let suffix = random_suffix();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("feedgate-test-{suffix}.db"));
                Self {
                    url: format!("sqlite://{}", path.display()),
                    replica_url: None,
                    cleanup: Cleanup::File(path),
                }
            }
            Backend::MySql => {
                let server = mysql_server();
                let name = format!("feedgate_test_{suffix}");
                create_database(&server, &name).await;
                Self {
                    url: format!("{server}/{name}"),
                    replica_url: None,
                    cleanup: Cleanup::Database { server, name },
                }
            }
        }
    }

    /// A database on the replicated primary (created there, so the replica
    /// creates it too; dropped there afterwards, and so on the replica).
    pub async fn replicated() -> Self {
        let server = primary_server();
        let name = format!("feedgate_test_{}", random_suffix());
        create_database(&server, &name).await;
        Self {
            url: format!("{server}/{name}"),
            replica_url: Some(format!("{}/{name}", replica_server())),
            cleanup: Cleanup::Database { server, name },
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A database on the MariaDB that takes TLS connections only, reached
    /// with sqlx's TLS parameters that trust the test CA.
    pub async fn secure() -> Self {
        let server = format!("{}?{}", tls_server(), tls_params());
        let name = format!("feedgate_test_{}", random_suffix());
        create_database(&server, &name).await;
        Self {
            url: database_url(&server, &name),
            replica_url: None,
            cleanup: Cleanup::Database { server, name },
        }
    }

    /// The database on the replica, for a replicated one.
    pub fn replica_url(&self) -> Option<&str> {
        self.replica_url.as_deref()
    }

    /// The same database for a second app instance; only `self` drops it.
    pub fn shared(&self) -> Self {
        Self {
            url: self.url.clone(),
            replica_url: self.replica_url.clone(),
            cleanup: Cleanup::Shared,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Shared => {}
            Cleanup::File(path) => {
                for extension in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(extension);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Database { server, name } => {
                let (server, name) = (server.clone(), name.clone());
                // Drop runs inside the test's runtime, which cannot block on
                // itself: drop the database from a thread with its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime starts");
                    runtime.block_on(drop_database(&server, &name));
                })
                .join();
            }
        }
    }
}

/// Drops a test database. The app's pool may still hold connections with a
/// transaction whose rollback has not run yet (sqlx rolls back dropped
/// transactions in the background), which would make `DROP DATABASE` wait
/// on its locks: such sessions are killed first.
async fn drop_database(server: &str, name: &str) {
    let Ok(mut conn) = MySqlConnection::connect(server).await else {
        return;
    };
    // MariaDB's processlist id is a signed BIGINT.
    let sessions: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
    )
    .bind(name)
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    for id in sessions {
        let kill = format!("KILL CONNECTION {id}");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(kill))
            .execute(&mut conn)
            .await;
    }
    let drop = format!("SET SESSION lock_wait_timeout = 30; DROP DATABASE IF EXISTS {name}");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await;
}
