//! `deploy/local-cluster.sh`: three instances on the local MariaDB and Redis
//! behind Varnish or nginx. A write through the front is read back through
//! the front and from the other instances directly; with Varnish, the purge
//! hook makes cached pages fresh again; `down` leaves nothing running.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, MySqlConnection};

use crate::support::{BIN, Reply, Scratch, get, http, installed, process_gone};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/local-cluster.sh");

fn mysql_server() -> String {
    std::env::var("FEEDGATE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A cluster that `up` started; `down` runs on drop if the test did not.
struct Cluster {
    _scratch: Scratch,
    state: PathBuf,
    front: String,
    instances: Vec<String>,
    ops: Vec<String>,
    running: bool,
}

impl Cluster {
    fn script(state: &PathBuf, front: &str, action: &str) -> Output {
        let redis = std::env::var("FEEDGATE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        Command::new(SCRIPT)
            .arg(action)
            .env("FEEDGATE_BIN", BIN)
            .env("CLUSTER_DIR", state)
            .env("CLUSTER_FRONT", front)
            .env("MYSQL_SERVER", mysql_server())
            .env("REDIS_URL", redis)
            .env_remove("CLUSTER_PORTS")
            .output()
            .expect("the script runs")
    }

    fn up(front: &str) -> Self {
        let scratch = Scratch::new("cluster");
        let state = scratch.path().join("state");
        let output = Self::script(&state, front, "up");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "up failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let url_after = |line: &str, marker: &str| {
            line.split_once(marker)
                .map(|(_, rest)| format!("http://{}", rest.split([' ', ')']).next().unwrap_or("")))
        };
        let instances: Vec<String> = stdout
            .lines()
            .filter(|line| line.starts_with("instance "))
            .filter_map(|line| url_after(line, ": http://"))
            .collect();
        let ops: Vec<String> = stdout
            .lines()
            .filter_map(|line| url_after(line, "(ops http://"))
            .collect();
        let last = stdout.lines().last().unwrap_or_default().to_owned();
        assert!(
            last.starts_with("http://"),
            "the last line is the front URL:\n{stdout}"
        );
        assert!(stdout.contains(&format!("front: {front}")), "{stdout}");
        assert_eq!((instances.len(), ops.len()), (3, 3), "{stdout}");
        Self {
            _scratch: scratch,
            state,
            front: last,
            instances,
            ops,
            running: true,
        }
    }

    fn pids(&self) -> Vec<u32> {
        let entries = std::fs::read_dir(&self.state).expect("the state folder exists");
        entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "pid"))
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .filter_map(|pid| pid.trim().parse().ok())
            .collect()
    }

    fn database(&self) -> String {
        let env = std::fs::read_to_string(self.state.join("cluster.env")).expect("cluster.env");
        env.lines()
            .find_map(|line| line.strip_prefix("DATABASE="))
            .expect("the database is recorded")
            .to_owned()
    }

    fn down(&mut self, front: &str) -> Output {
        self.running = false;
        Self::script(&self.state, front, "down")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = Self::script(&self.state, "none", "down");
        }
    }
}

fn send(base: &str, method: &str, path: &str, token: Option<&str>, body: Value) -> Reply {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("Authorization", b.as_str()))
        .collect();
    http(method, base, path, &headers, Some(&body))
        .unwrap_or_else(|err| panic!("{method} {base}{path}: {err}"))
}

/// Polls a read through the front until `check` holds, for up to 10 s.
fn eventually(base: &str, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(base, path);
        if reply.status == 200 && check(&reply.json()) {
            return reply.json();
        }
        assert!(
            Instant::now() < deadline,
            "{path} never changed: {}",
            reply.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn database_exists(name: &str) -> bool {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            let mut conn = MySqlConnection::connect(&mysql_server())
                .await
                .expect("MariaDB answers");
            let found: Option<String> = sqlx::query_scalar(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
            )
            .bind(name)
            .fetch_optional(&mut conn)
            .await
            .expect("the query runs");
            found.is_some()
        })
}

fn cluster_through(front_kind: &str, daemon: &[&str]) {
    if installed(daemon).is_none() {
        eprintln!(
            "SKIPPED: {front_kind} is not installed (apt-get install -y {}); .ci/run installs it",
            if front_kind == "varnish" {
                "varnish varnish-modules"
            } else {
                "nginx-light"
            }
        );
        return;
    }
    let mut cluster = Cluster::up(front_kind);
    let front = cluster.front.clone();

    let empty = get(&front, "/api/v1/articles");
    assert_eq!(empty.status, 200, "{empty:?}");
    assert_eq!(empty.json()["pagination"]["total"], 0);

    let account = json!({"username": "ada", "password": "correct horse battery"});
    assert_eq!(
        send(&front, "POST", "/api/v1/users", None, account.clone()).status,
        201
    );
    let mut grant = account;
    grant["grant_type"] = json!("password");
    let tokens = send(&front, "POST", "/api/v1/tokens", None, grant);
    assert_eq!(tokens.status, 200, "{tokens:?}");
    let token = tokens.json()["access_token"].as_str().unwrap().to_owned();
    let created = send(
        &front,
        "POST",
        "/api/v1/articles",
        Some(&token),
        json!({"title": "Through the front", "body": "Hello.", "status": "published"}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let path = format!("/api/v1/articles/{}", created.json()["id"]);

    let read = get(&front, &path);
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.json()["title"], "Through the front");
    for instance in &cluster.instances[1..] {
        assert_eq!(
            get(instance, &path).json()["title"],
            "Through the front",
            "{instance}"
        );
    }
    // The list the front may have cached before the write shows it (purged).
    eventually(&front, "/api/v1/articles", |list| {
        list["pagination"]["total"] == 1
    });

    let changed = send(
        &front,
        "PATCH",
        &path,
        Some(&token),
        json!({"title": "Changed"}),
    );
    assert_eq!(changed.status, 200, "{changed:?}");
    eventually(&front, &path, |article| article["title"] == "Changed");
    assert_eq!(get(&cluster.instances[2], &path).json()["title"], "Changed");

    assert_eq!(get(&cluster.ops[0], "/metrics").status, 200);
    assert_eq!(get(&cluster.instances[0], "/metrics").status, 404);

    let pids = cluster.pids();
    assert!(pids.len() >= 3, "{pids:?}");
    let database = cluster.database();
    assert!(database_exists(&database));
    let output = cluster.down(front_kind);
    assert!(
        output.status.success(),
        "down failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for pid in pids {
        assert!(process_gone(pid), "process {pid} still runs after down");
    }
    assert!(!cluster.state.exists(), "the state folder is removed");
    assert!(!database_exists(&database), "{database} is dropped");
}

#[test]
fn a_local_cluster_behind_varnish_serves_writes_and_purges_them() {
    cluster_through("varnish", &["varnishd"]);
}

#[test]
fn a_local_cluster_behind_nginx_serves_writes_from_every_instance() {
    cluster_through("nginx", &["nginx"]);
}
