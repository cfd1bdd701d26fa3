//! Rate limits and connection caps: per connection, per client IP, global.
//!
//! Rates are GCRA (governor): a burst, then one event per refill interval.
//! This is not a sliding window: after a full burst and a steady refill, up
//! to `burst + window / refill` events pass in a window (40 in 10 s with the
//! defaults). Keyed limiters are pruned periodically so that the map of IPs
//! does not grow without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::LimitSettings;

type KeyedLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// Why a connection is refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitRefusal {
    /// The IP opens connections too fast; retry after this many seconds.
    IpRate { retry_after: u64 },
    /// The IP has too many open connections.
    IpCap,
    /// The server is at its global connection cap.
    Capacity,
}

/// The shared limit state.
pub struct Limits {
    settings: LimitSettings,
    global: Arc<Semaphore>,
    ip_open: Arc<Mutex<HashMap<IpAddr, u32>>>,
    ip_connects: KeyedLimiter,
    ip_messages: KeyedLimiter,
    clock: DefaultClock,
}

/// What an admitted connection holds; dropping it gives the places back.
pub struct ConnectionSlot {
    _global: OwnedSemaphorePermit,
    ip: IpAddr,
    ip_open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.ip_open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

fn quota(burst: u32, refill: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(refill)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// A std mutex, not a tokio one: nothing awaits while it is held. A poisoned
/// lock only means another thread panicked mid-update of plain counters.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limits {
    /// Builds the limiters from validated settings.
    pub fn new(settings: &LimitSettings) -> Limits {
        Limits {
            settings: settings.clone(),
            global: Arc::new(Semaphore::new(settings.max_connections as usize)),
            ip_open: Arc::default(),
            ip_connects: RateLimiter::keyed(quota(
                settings.ip_connect_burst,
                settings.ip_connect_refill,
            )),
            ip_messages: RateLimiter::keyed(quota(
                settings.ip_message_burst,
                settings.ip_message_refill,
            )),
            clock: DefaultClock::default(),
        }
    }

    /// Admits a new connection from `ip`, or says which limit refuses it.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionSlot, LimitRefusal> {
        if let Err(not_until) = self.ip_connects.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            return Err(LimitRefusal::IpRate {
                retry_after: wait.as_secs().max(1),
            });
        }
        let mut open = lock(&self.ip_open);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.settings.ip_max_connections {
            if *count == 0 {
                open.remove(&ip);
            }
            return Err(LimitRefusal::IpCap);
        }
        let permit = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| LimitRefusal::Capacity)?;
        *count += 1;
        Ok(ConnectionSlot {
            _global: permit,
            ip,
            ip_open: self.ip_open.clone(),
        })
    }

    /// Counts one message against its IP's budget; false when over it.
    pub fn ip_message(&self, ip: IpAddr) -> bool {
        self.ip_messages.check_key(&ip).is_ok()
    }

    /// A fresh per-connection message limiter.
    pub fn connection_limiter(&self) -> DefaultDirectRateLimiter {
        // A clone of the shared clock: `RateLimiter::direct` builds a new
        // quanta clock, whose CPU probing was 15 % of a connect storm's CPU.
        RateLimiter::direct_with_clock(
            quota(self.settings.message_burst, self.settings.message_refill),
            self.clock.clone(),
        )
    }

    /// Forgets IPs whose limiters are back to full, and frees the space.
    pub fn prune(&self) {
        for limiter in [&self.ip_connects, &self.ip_messages] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys held by the keyed limiters (for tests of pruning).
    pub fn tracked_ips(&self) -> usize {
        self.ip_connects.len() + self.ip_messages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn settings() -> LimitSettings {
        LimitSettings {
            max_connections: 3,
            ip_max_connections: 2,
            ip_connect_burst: 10,
            ip_connect_refill: Duration::from_secs(1),
            message_burst: 20,
            message_refill: Duration::from_millis(500),
            ip_message_burst: 5,
            ip_message_refill: Duration::from_secs(60),
            max_text_chars: 500,
            max_message_bytes: 2048,
        }
    }

    #[test]
    fn per_ip_and_global_caps_release_on_drop() {
        let limits = Limits::new(&settings());
        let a = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).err(), Some(LimitRefusal::IpCap));
        let _b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).err(), Some(LimitRefusal::Capacity));
        drop(a1);
        let _b2 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).err(), Some(LimitRefusal::IpCap));
        let c = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
        assert_eq!(limits.admit(c).err(), Some(LimitRefusal::Capacity));
    }

    #[test]
    fn connect_rate_refuses_with_retry_after() {
        let mut s = settings();
        s.ip_connect_burst = 1;
        s.ip_connect_refill = Duration::from_secs(30);
        let limits = Limits::new(&s);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let _first = limits.admit(ip).unwrap();
        match limits.admit(ip) {
            Err(LimitRefusal::IpRate { retry_after }) => assert!((29..=30).contains(&retry_after)),
            other => panic!("expected ip rate refusal, got {:?}", other.err()),
        }
    }

    #[test]
    fn per_connection_limit_is_a_burst_of_twenty() {
        let limits = Limits::new(&settings());
        let limiter = limits.connection_limiter();
        let passed = (0..25).filter(|_| limiter.check().is_ok()).count();
        assert_eq!(passed, 20);
    }

    #[test]
    fn ip_message_budget_spans_connections_and_prunes() {
        let limits = Limits::new(&settings());
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!((0..8).filter(|_| limits.ip_message(ip)).count(), 5);
        assert!(limits.tracked_ips() >= 1);
        limits.prune(); // still limited: kept
        assert!(limits.tracked_ips() >= 1);
    }
}
