//! Cross-instance invalidation: every instance subscribes to the Redis
//! channel on which writers announce the families they bumped.
//!
//! Pub/sub delivers at most once, so a subscriber that lost its connection
//! may have missed messages: on every (re)connect the local epoch is bumped,
//! which makes everything in the local tier stale. While disconnected the
//! instance is "degraded": local entries are served only while very young.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use super::l2::L2;
use super::stamp::Generations;

/// How often the subscription is checked with a PING.
const HEARTBEAT: Duration = Duration::from_millis(500);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub struct Subscriber {
    pub client: redis::Client,
    pub generations: Arc<Generations>,
    pub l2: Arc<L2>,
    /// True while subscribed; false means invalidations may be missed.
    pub connected: Arc<AtomicBool>,
    pub timeout: Duration,
}

impl Subscriber {
    pub async fn run(self) {
        let mut retry = RETRY_MIN;
        loop {
            match self.subscribe().await {
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
    async fn subscribe(&self) -> Result<(), redis::RedisError> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(self.l2.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::time::timeout(self.timeout * 10, connect)
            .await
            .map_err(|_| timeout_error())??;
        // Anything may have changed while we were not listening: forget
        // local entries, and if invalidations may have been lost (this
        // instance's, or any instance's during an outage) move the shared
        // tier to a new epoch before serving from it again.
        self.generations.bump_epoch();
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
                    let ping = tokio::time::timeout(self.timeout * 5, sink.ping::<redis::Value>()).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        return Err(timeout_error());
                    }
                    let _ = self.l2.recover().await;
                }
            }
        }
    }

    fn apply(&self, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload);
        let mut lines = text.lines();
        match lines.next() {
            Some("bump") => {
                let families: Vec<&str> = lines.collect();
                crate::metrics::invalidations_received(families.len());
                self.generations.bump(&families);
            }
            Some("flush") => {
                crate::metrics::invalidations_received(1);
                self.generations.bump_epoch();
            }
            _ => tracing::debug!("ignoring an unknown invalidation message"),
        }
    }
}

fn timeout_error() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "redis subscription timed out",
    ))
}
