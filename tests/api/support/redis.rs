//! Redis for cache tests: a key prefix of its own on the shared server (its
//! keys deleted afterwards), or a private `redis-server` child process that a
//! test may stop and start again on the same port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use feedgate::config::{Secret, Settings};
use rand::distr::{Alphanumeric, SampleString};
use redis::Commands;

/// The shared server, `FEEDGATE_TEST_REDIS_URL` or the local default.
pub fn shared_url() -> String {
    std::env::var("FEEDGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn random_prefix() -> String {
    let suffix = Alphanumeric
        .sample_string(&mut rand::rng(), 12)
        .to_lowercase();
    format!("feedgate-test-{suffix}")
}

/// The Redis serving TLS (`scripts/services.sh`), as a `rediss://` URL.
pub fn tls_url() -> String {
    std::env::var("FEEDGATE_TEST_TLS_REDIS_URL")
        .unwrap_or_else(|_| "rediss://127.0.0.1:6390".into())
}

/// A unique key prefix (and invalidation channel) on the shared server.
/// Instances configured with the same `SharedRedis` share their L2 tier.
pub struct SharedRedis {
    url: String,
    prefix: String,
}

impl SharedRedis {
    pub fn new() -> Self {
        Self {
            url: shared_url(),
            prefix: random_prefix(),
        }
    }

    /// A prefix on the Redis that serves TLS only; `configure` then sets
    /// its `rediss://` URL and the test CA.
    pub fn over_tls() -> Self {
        Self {
            url: tls_url(),
            prefix: random_prefix(),
        }
    }

    /// Points an instance's cache at this prefix. Calls get a generous
    /// timeout: a debug build under parallel load must not turn shared hits
    /// into misses.
    pub fn configure(&self, settings: &mut Settings) {
        settings.redis.url = Secret::new(&self.url);
        if self.url.starts_with("rediss:") {
            settings.redis.ca_file = super::db::tls_ca();
        }
        settings.cache.redis_prefix = self.prefix.clone();
        settings.cache.redis_timeout_ms = 1000;
    }
}

impl SharedRedis {
    /// A client of this Redis (trusting the test CA for TLS).
    pub fn client(&self) -> redis::Client {
        let mut settings = Settings::defaults();
        self.configure(&mut settings);
        settings.redis.client(&self.url).expect("a valid redis URL")
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for SharedRedis {
    fn drop(&mut self) {
        let client = self.client();
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = match conn.scan_match(&pattern) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        for chunk in keys.chunks(100) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

/// A `redis-server` of the test's own, on a free port, persisting to a
/// temporary folder only when stopped (so its data survives a restart).
/// Dropping it kills the process, also when the test panics.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Further `redis-server` arguments, e.g. a memory cap.
    args: Vec<String>,
}

impl RedisServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server started with these further arguments
    /// (`["--maxmemory", "2mb"]`).
    pub async fn start_with(args: &[&str]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("{}-{port}", random_prefix()));
        std::fs::create_dir_all(&dir).expect("a folder for redis");
        let mut server = Self {
            port,
            dir,
            child: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        server.restart().await;
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the process (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping().await {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts the server down, saving its data for the next start, and waits
    /// for the process to exit.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("redis-server is running");
        if let Ok(mut conn) = self.client().get_multiplexed_async_connection().await {
            // The server closes the connection instead of answering.
            let _: Result<(), _> = redis::cmd("SHUTDOWN")
                .arg("SAVE")
                .query_async(&mut conn)
                .await;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a valid redis URL")
    }

    async fn ping(&self) -> bool {
        let Ok(mut conn) = self.client().get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A three-node Redis Cluster of the test's own (no replicas), on free
/// ports; its nodes stop when it is dropped.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let mut nodes = Vec::with_capacity(3);
        for _ in 0..3 {
            let port = free_port();
            let config = format!("nodes-{port}.conf");
            nodes.push(
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &config,
                    "--cluster-node-timeout",
                    "2000",
                ])
                .await,
            );
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(created.success(), "the cluster is created");
        let cluster = Self { nodes };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster.is_ok().await {
            assert!(Instant::now() < deadline, "the cluster never became ok");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster
    }

    /// Seed URLs for `REDIS_URL`, comma-separated.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Stops one node (a master: without replicas, the cluster then stops
    /// serving keys everywhere).
    pub async fn stop(&mut self, node: usize) {
        self.nodes[node].stop().await;
    }

    /// Starts a stopped node again, with its data, and waits until the
    /// cluster serves every slot.
    pub async fn restart(&mut self, node: usize) {
        self.nodes[node].restart().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.is_ok().await {
            assert!(Instant::now() < deadline, "the cluster never became ok");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn is_ok(&self) -> bool {
        for node in &self.nodes {
            let Ok(mut conn) = node.client().get_multiplexed_async_connection().await else {
                return false;
            };
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !info.contains("cluster_state:ok") {
                return false;
            }
        }
        true
    }
}

/// A master of the test's own watched by one Redis Sentinel; both stop
/// when it is dropped.
pub struct RedisSentinel {
    master: RedisServer,
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl RedisSentinel {
    pub const MASTER_NAME: &'static str = "feedgate-test";

    pub async fn start() -> Self {
        let master = RedisServer::start().await;
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("{}-sentinel-{port}", random_prefix()));
        std::fs::create_dir_all(&dir).expect("a folder for the sentinel");
        let config = dir.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\n\
                 sentinel monitor {name} 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds {name} 2000\n",
                name = Self::MASTER_NAME,
                master = master.port(),
            ),
        )
        .expect("the sentinel's configuration is written");
        let child = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server can run as a sentinel");
        let sentinel = Self {
            master,
            port,
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sentinel.knows_the_master().await {
            assert!(
                Instant::now() < deadline,
                "the sentinel never named the master"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sentinel
    }

    /// The sentinel's URL, for `REDIS_URL` in sentinel mode.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn master(&self) -> &RedisServer {
        &self.master
    }

    async fn knows_the_master(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        let address: Result<Vec<String>, _> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(Self::MASTER_NAME)
            .query_async(&mut conn)
            .await;
        address.is_ok_and(|a| a.len() == 2)
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
