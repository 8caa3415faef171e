//! In-process buckets: governor's keyed GCRA limiters, one per class.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use super::{Bucket, Decision, Rate};

type Keyed =
    RateLimiter<Bucket, DashMapStateStore<Bucket>, DefaultClock, StateInformationMiddleware>;

pub struct LocalBuckets {
    limiters: Vec<(Keyed, Rate)>,
}

impl LocalBuckets {
    pub fn new(rates: &[Rate]) -> Self {
        let limiters = rates
            .iter()
            .map(|&rate| {
                let burst = NonZeroU32::new(rate.limit).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(rate.interval)
                    .expect("the interval is positive")
                    .allow_burst(burst);
                let limiter =
                    RateLimiter::dashmap(quota).with_middleware::<StateInformationMiddleware>();
                (limiter, rate)
            })
            .collect();
        Self { limiters }
    }

    pub fn check(&self, index: usize, key: Bucket) -> Decision {
        let (limiter, rate) = &self.limiters[index];
        match limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: rate.limit,
                    remaining,
                    reset: rate.interval * (rate.limit - remaining.min(rate.limit)),
                    retry_after: Duration::ZERO,
                }
            }
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(limiter.clock().now());
                Decision {
                    allowed: false,
                    limit: rate.limit,
                    remaining: 0,
                    reset: retry_after + rate.interval * (rate.limit - 1),
                    retry_after,
                }
            }
        }
    }

    pub fn forget_idle(&self) {
        for (limiter, _) in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
