//! The link to Redis: one connection layer for everything that talks to it
//! (the shared cache tier, the invalidation channel, the shared rate
//! limits), whatever `redis.mode` says: one server, a Redis Cluster, or a
//! master found through Sentinel.
//!
//! Calls share one multiplexed connection taken from a deadpool pool,
//! avoiding the pool's per-checkout `UNWATCH`+`PING`; on a connection error
//! it is dropped and the next call checks out a fresh one (with Sentinel,
//! from the master the sentinels name then, so a failover is followed).
//! Every call has a timeout, and failed calls are counted by operation.
//! The invalidation channel needs a connection of its own (a subscribed one
//! takes no other commands): [`RedisLink::pubsub_client`] names where.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{Cmd, ConnectionAddr, IntoConnectionInfo, RedisFuture, Value};

use crate::config::{RedisMode, RedisSettings};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis did not answer in time")]
    Timeout,
}

impl LinkError {
    /// The connection itself failed (as opposed to Redis answering "no").
    pub fn is_connection_error(&self) -> bool {
        match self {
            LinkError::Redis(err) => {
                err.is_io_error() || err.is_connection_dropped() || err.is_timeout()
            }
            LinkError::Pool(_) | LinkError::Timeout => true,
        }
    }

    /// Redis is full and refuses writes (`maxmemory` with `noeviction`).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, LinkError::Redis(err) if err.code() == Some("OOM"))
    }
}

/// The link could not be set up from the settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("REDIS_URL: {0}")]
    Pool(#[from] deadpool_redis::CreatePoolError),
}

enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
    Sentinel(deadpool_redis::sentinel::Pool),
}

/// A connection to one server or to a cluster.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Where the channel subscribes.
enum Subscriptions {
    /// The configured nodes (one server, or any cluster node: a message
    /// published on any reaches every node's subscribers), in turn.
    Listed(Vec<redis::Client>),
    /// The current master, as the sentinels name it at each attempt.
    Sentinel(Box<tokio::sync::Mutex<SentinelClient>>),
}

pub struct RedisLink {
    pool: Pool,
    shared: Mutex<Option<Conn>>,
    subscriptions: Subscriptions,
    /// On a cluster, the configured nodes, for commands that any node
    /// takes (empty otherwise).
    cluster_nodes: Vec<(String, u16)>,
}

impl RedisLink {
    /// The link `settings` describe; `None` when no Redis is configured.
    pub fn new(settings: &RedisSettings) -> Result<Option<Self>, SetupError> {
        let urls = settings.urls();
        if urls.is_empty() {
            return Ok(None);
        }
        let clients = urls
            .iter()
            .map(|url| settings.client(url))
            .collect::<Result<Vec<_>, _>>()?;
        let runtime = Some(deadpool_redis::Runtime::Tokio1);
        let pool = match settings.mode {
            RedisMode::Single => {
                // Built from the client, so its TLS roots come along.
                let info = clients[0].get_connection_info().clone();
                let manager = deadpool_redis::Manager::new(info)
                    .map_err(|err| deadpool_redis::CreatePoolError::Config(err.into()))?;
                Pool::Single(
                    deadpool_redis::Pool::builder(manager)
                        .runtime(deadpool_redis::Runtime::Tokio1)
                        .build()
                        .map_err(deadpool_redis::CreatePoolError::Build)?,
                )
            }
            RedisMode::Cluster => Pool::Cluster(
                deadpool_redis::cluster::Config::from_urls(urls.clone()).create_pool(runtime)?,
            ),
            RedisMode::Sentinel => Pool::Sentinel(
                deadpool_redis::sentinel::Config::from_urls(
                    urls.clone(),
                    settings.sentinel_master.clone(),
                    deadpool_redis::sentinel::SentinelServerType::Master,
                )
                .create_pool(runtime)?,
            ),
        };
        let subscriptions = match settings.mode {
            RedisMode::Sentinel => {
                let sentinel = SentinelClient::build(
                    urls.clone(),
                    settings.sentinel_master.clone(),
                    None,
                    SentinelServerType::Master,
                )?;
                Subscriptions::Sentinel(Box::new(tokio::sync::Mutex::new(sentinel)))
            }
            RedisMode::Single | RedisMode::Cluster => Subscriptions::Listed(clients),
        };
        let cluster_nodes = match settings.mode {
            RedisMode::Cluster => urls
                .iter()
                .filter_map(
                    |url| match url.as_str().into_connection_info().ok()?.addr() {
                        ConnectionAddr::Tcp(host, port)
                        | ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
                        _ => None,
                    },
                )
                .collect(),
            _ => Vec::new(),
        };
        Ok(Some(Self {
            pool,
            shared: Mutex::new(None),
            subscriptions,
            cluster_nodes,
        }))
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.pool, Pool::Cluster(_))
    }

    async fn connection(&self) -> Result<Conn, LinkError> {
        if let Some(conn) = self.shared.lock().expect("not poisoned").clone() {
            return Ok(conn);
        }
        let conn = match &self.pool {
            Pool::Single(pool) => Conn::Single(deadpool_redis::Connection::take(pool.get().await?)),
            Pool::Cluster(pool) => {
                Conn::Cluster(deadpool_redis::cluster::Connection::take(pool.get().await?))
            }
            // The sentinels name the master at each checkout, so after a
            // failover the next connection reaches the new one.
            Pool::Sentinel(pool) => Conn::Single(deadpool_redis::sentinel::Connection::take(
                pool.get().await?,
            )),
        };
        *self.shared.lock().expect("not poisoned") = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one exchange (`op` names it in the error metric) within
    /// `timeout`. A failed connection is dropped, so the next call starts
    /// afresh.
    pub async fn run<T, F, Fut>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: F,
    ) -> Result<T, LinkError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, LinkError>>,
    {
        let result = match tokio::time::timeout(timeout, async {
            f(self.connection().await?).await
        })
        .await
        {
            Ok(result) => result,
            Err(_) => Err(LinkError::Timeout),
        };
        if let Err(err) = &result {
            crate::metrics::redis_error(op);
            tracing::debug!(error = %err, op, "redis call failed");
            if err.is_connection_error() {
                *self.shared.lock().expect("not poisoned") = None;
            }
        }
        result
    }

    /// Runs a command that any node takes (`PUBLISH`, `CLUSTER INFO`): on a
    /// cluster, where it is routed first and then, while that fails, on
    /// each configured node in turn; the first answer.
    pub async fn run_anywhere(
        &self,
        op: &'static str,
        timeout: Duration,
        cmd: &Cmd,
    ) -> Result<Value, LinkError> {
        let routed = self.run_on(op, timeout, cmd, None).await;
        if routed.is_ok() {
            return routed;
        }
        for node in &self.cluster_nodes {
            let answer = self.run_on(op, timeout, cmd, Some(node)).await;
            if answer.is_ok() {
                return answer;
            }
        }
        routed
    }

    /// Runs `cmd` on every configured cluster node until one answers: the
    /// first answer (`None` without a cluster, or if none answers).
    pub async fn ask_any_node(
        &self,
        op: &'static str,
        timeout: Duration,
        cmd: &Cmd,
    ) -> Option<Value> {
        for node in &self.cluster_nodes {
            if let Ok(answer) = self.run_on(op, timeout, cmd, Some(node)).await {
                return Some(answer);
            }
        }
        None
    }

    async fn run_on(
        &self,
        op: &'static str,
        timeout: Duration,
        cmd: &Cmd,
        node: Option<&(String, u16)>,
    ) -> Result<Value, LinkError> {
        self.run(op, timeout, |conn| async move {
            Ok(match (conn, node) {
                (Conn::Cluster(mut conn), Some((host, port))) => {
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    conn.route_command(cmd.clone(), routing).await?
                }
                (mut conn, _) => cmd.query_async(&mut conn).await?,
            })
        })
        .await
    }

    /// Where the invalidation channel subscribes at its `attempt`-th try:
    /// the configured nodes in turn, or the master the sentinels name now.
    pub async fn pubsub_client(&self, attempt: usize) -> Result<redis::Client, redis::RedisError> {
        match &self.subscriptions {
            Subscriptions::Listed(clients) => Ok(clients[attempt % clients.len()].clone()),
            Subscriptions::Sentinel(sentinel) => sentinel.lock().await.async_get_client().await,
        }
    }
}
