//! Cross-instance invalidation: every instance subscribes to the Redis
//! channel on which writers announce the families they bumped.
//!
//! Messages: `commit` (a write committed), then `@` and its commit position
//! if it has one, then one family per line; `flush` (everything may be
//! stale). The position is noted before the families are bumped (see
//! `positions`). `bump`, which earlier versions sent before a write
//! committed, is ignored: the commit's message follows it.
//!
//! Pub/sub delivers at most once, so a subscriber that lost its connection
//! may have missed messages: on every (re)connect the local epoch is bumped,
//! which makes everything in the local tier stale. While disconnected the
//! instance is "degraded": local entries are served only while very young.
//! On a cluster, `PUBLISH` reaches subscribers on every node, so one
//! subscription to any node will do; the next node is tried when one fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use super::key::Family;
use super::l2::L2;
use super::positions::Positions;
use super::stamp::Generations;
use crate::redis_link::RedisLink;

/// How often the subscription is checked with a PING.
const HEARTBEAT: Duration = Duration::from_millis(500);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub struct Subscriber {
    pub link: Arc<RedisLink>,
    pub generations: Arc<Generations>,
    pub positions: Arc<Positions>,
    pub l2: Arc<L2>,
    /// True while subscribed; false means invalidations may be missed.
    pub connected: Arc<AtomicBool>,
    pub timeout: Duration,
}

impl Subscriber {
    pub async fn run(self) {
        let mut retry = RETRY_MIN;
        for attempt in 0.. {
            let subscribed = match self.link.pubsub_client(attempt).await {
                Ok(client) => self.subscribe(&client).await,
                Err(err) => Err(err),
            };
            match subscribed {
                Ok(()) => retry = RETRY_MIN,
                Err(err) => {
                    tracing::warn!(error = %err, "invalidation channel unavailable");
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
            // Another instance may write, and fail to announce it, before we
            // are back; it may also be gone by then. So every instance that
            // lost the channel bumps the shared epoch when it returns.
            if self.connected.swap(false, Ordering::AcqRel) {
                self.l2.mark_dirty();
            }
            tokio::time::sleep(retry).await;
        }
    }

    /// One subscription, until the connection fails.
    async fn subscribe(&self, client: &redis::Client) -> Result<(), redis::RedisError> {
        let connect = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(self.l2.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| timeout_error())??;
        // Anything may have changed while we were not listening: forget
        // local entries, and if invalidations may have been lost (this
        // instance's, or any instance's during an outage) move the shared
        // tier to a new epoch before serving from it again.
        self.generations.bump_epoch();
        self.l2.forget_unechoed();
        let _ = self.l2.recover().await;
        self.connected.store(true, Ordering::Release);
        tracing::info!("subscribed to cache invalidations");

        let (mut sink, mut stream) = pubsub.split();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return Ok(()) };
                    self.apply(message.get_payload_bytes());
                }
                _ = heartbeat.tick() => {
                    let ping = tokio::time::timeout(self.timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        return Err(timeout_error());
                    }
                    self.l2.check_cluster().await;
                    let _ = self.l2.recover().await;
                }
            }
        }
    }

    fn apply(&self, payload: &[u8]) {
        if self.l2.is_own_echo(payload) {
            return;
        }
        let text = String::from_utf8_lossy(payload);
        let mut lines = text.lines().peekable();
        match lines.next() {
            Some("commit") => {}
            // Announced before a write committed by an earlier version:
            // the commit's own message follows.
            Some("bump") => return,
            Some("flush") => {
                crate::metrics::invalidations_received(1);
                self.generations.bump_epoch();
                return;
            }
            _ => {
                tracing::debug!("ignoring an unknown invalidation message");
                return;
            }
        }
        if let Some(position) = lines.peek().and_then(|line| line.strip_prefix('@')) {
            match position.parse() {
                Ok(position) => self.positions.note(&position),
                // A write we cannot fence fills against: forget everything.
                Err(_) => return self.generations.bump_epoch(),
            }
            lines.next();
        }
        match lines.map(str::parse).collect::<Result<Vec<Family>, ()>>() {
            Ok(families) => {
                crate::metrics::invalidations_received(families.len());
                self.generations.bump(&families);
            }
            // Unreadable (a newer version's family?): forget everything.
            Err(()) => self.generations.bump_epoch(),
        }
    }
}

fn timeout_error() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "redis subscription timed out",
    ))
}
