//! The process's one quanta clock: every per-connection message limiter
//! reads it, and the per-IP limits measure their waits (`Retry-After`) on it.

use std::sync::OnceLock;

use governor::clock::{Clock, QuantaClock, QuantaInstant};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::RateLimiter;

/// A connection's own message limiter, on the [`SharedClock`].
pub type ConnectionLimiter =
    RateLimiter<NotKeyed, InMemoryState, SharedClock, NoOpMiddleware<QuantaInstant>>;

/// The process's quanta clock, reached through a static: a limiter holding
/// a clock of its own carried 40 bytes more in every connection's task (its
/// idle cost), and building a fresh one probed the CPU each time, which was
/// 15 % of a connect storm's CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedClock;

impl Clock for SharedClock {
    type Instant = QuantaInstant;

    fn now(&self) -> QuantaInstant {
        static CLOCK: OnceLock<QuantaClock> = OnceLock::new();
        CLOCK.get_or_init(QuantaClock::default).now()
    }
}
