//! The replica that `scripts/services.sh` starts, for tests that stop,
//! delay or kill it. Such a test holds [`ReplicaControl`], a lock shared by
//! every test process (nextest runs each test in its own), so no two of them
//! disturb the replica at once; whatever happens to the test, dropping it
//! leaves the replica running and replicating at full speed again. Other
//! tests on the replicated pair must tolerate lag: they read with positions.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::{Connection, MySqlConnection};

use super::db::{primary_server, replica_server};

/// Control of the replica: exclusive to stop, delay or kill it, or shared
/// by tests that need it to replicate undisturbed.
pub struct ReplicaControl {
    _lock: File,
    exclusive: bool,
}

/// Where `scripts/services.sh` keeps its servers' files.
fn services_dir() -> PathBuf {
    std::env::var_os("FEEDGATE_SERVICES_DIR")
        .map_or_else(|| PathBuf::from("/tmp/feedgate-services"), PathBuf::from)
}

/// A statement on the replica.
async fn on_replica(sql: &str) {
    let server = replica_server();
    let mut conn = MySqlConnection::connect(&server)
        .await
        .unwrap_or_else(|err| panic!("the replica at {server} must be running: {err}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

impl ReplicaControl {
    /// Waits for every other test that uses the replica to finish.
    pub async fn acquire() -> Self {
        let control = Self::lock(true).await;
        control.restore().await;
        control
    }

    /// Waits for the tests that disturb the replica to finish, and keeps
    /// them off until dropped (tests that assert a replica serves).
    pub async fn undisturbed() -> Self {
        Self::lock(false).await
    }

    async fn lock(exclusive: bool) -> Self {
        let path = std::env::temp_dir().join("feedgate-test-replica.lock");
        let lock = tokio::task::spawn_blocking(move || {
            let file = File::create(&path).expect("the lock file opens");
            if exclusive {
                file.lock().expect("the replica lock is taken");
            } else {
                file.lock_shared().expect("the replica lock is shared");
            }
            file
        })
        .await
        .expect("the lock task runs");
        Self {
            _lock: lock,
            exclusive,
        }
    }

    /// Stops applying the primary's changes (they still arrive).
    pub async fn stop_applying(&self) {
        on_replica("STOP SLAVE SQL_THREAD").await;
    }

    pub async fn resume_applying(&self) {
        on_replica("START SLAVE SQL_THREAD").await;
    }

    /// Applies each change `secs` seconds after the primary made it.
    pub async fn delay(&self, secs: u32) {
        on_replica(&format!(
            "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = {secs}; START SLAVE"
        ))
        .await;
    }

    /// Kills the replica's server (SIGKILL), as a crash would.
    pub async fn kill(&self) {
        let pid_file = services_dir().join("replica/mariadbd.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|err| panic!("{}: {err}", pid_file.display()));
        let killed = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill runs");
        assert!(killed.success(), "the replica is killed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while MySqlConnection::connect(&replica_server()).await.is_ok() {
            assert!(Instant::now() < deadline, "the replica still answers");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the replica's server again (`scripts/services.sh`).
    pub async fn restart(&self) {
        tokio::task::spawn_blocking(start_services)
            .await
            .expect("services.sh runs");
    }

    /// The replica running, replicating, without delay.
    async fn restore(&self) {
        if MySqlConnection::connect(&replica_server()).await.is_err() {
            self.restart().await;
        }
        on_replica("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE").await;
    }
}

fn start_services() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh");
    let status = Command::new("bash")
        .arg(script)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scripts/services.sh runs");
    assert!(status.success(), "scripts/services.sh starts the replica");
}

impl Drop for ReplicaControl {
    fn drop(&mut self) {
        if !self.exclusive {
            return;
        }
        // Drop runs inside the test's runtime: restore from a thread with
        // its own, before the lock goes.
        let _ = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime starts");
            runtime.block_on(async {
                if MySqlConnection::connect(&replica_server()).await.is_err() {
                    start_services();
                }
                if let Ok(mut conn) = MySqlConnection::connect(&replica_server()).await {
                    let _ =
                        sqlx::raw_sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE")
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// The replica's own view: whether it has applied everything the primary
/// has committed so far (waits up to `timeout`).
pub async fn replica_caught_up(timeout: Duration) -> bool {
    let mut primary = MySqlConnection::connect(&primary_server())
        .await
        .expect("the primary answers");
    let position: String = sqlx::query_scalar("SELECT @@gtid_binlog_pos")
        .fetch_one(&mut primary)
        .await
        .expect("the primary has a position");
    let mut replica = MySqlConnection::connect(&replica_server())
        .await
        .expect("the replica answers");
    let reached: Option<i64> = sqlx::query_scalar("SELECT MASTER_GTID_WAIT(?, ?)")
        .bind(position)
        .bind(timeout.as_secs_f64())
        .fetch_one(&mut replica)
        .await
        .expect("the replica waits");
    reached == Some(0)
}
