//! Rate limits and connection caps: per connection, per client IP, per
//! identified user ([`users`]), global.
//!
//! Rates are GCRA (governor): a burst, then one event per refill interval.
//! This is not a sliding window: after a full burst and a steady refill, up
//! to `burst + window / refill` events pass in a window (40 in 10 s with the
//! defaults). Keyed limiters are pruned periodically so that the map of IPs
//! does not grow without bound.
//!
//! Failed token checks have their own per-IP budget. Once it is spent the IP
//! is locked out until one more attempt refills: its upgrades are refused
//! before their token is looked at, so guessing is bounded per address.
//!
//! "Per IP" means per [`IpKey`]: an IPv4 address, or an IPv6 network of
//! `limits.ipv6_prefix` bits. Every per-IP limit takes a key, never an
//! address, so none can be keyed by a raw IPv6 address.
//!
//! An identified user's connections meet every limit a guest's do, and the
//! per-user ones on top: the user's messages share one budget and its open
//! connections one cap, whichever IPs they come from.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::LimitSettings;

mod clock;
mod key;
mod open;
mod users;

pub use clock::{ConnectionLimiter, SharedClock};
pub use key::IpKey;
pub use open::{HttpCaps, HttpSlot};
use open::{OpenPerKey, OpenSlot};
use users::{UserKey, UserLimits};

/// A GCRA limiter per key: per [`IpKey`] unless another key is named.
type KeyedLimiter<K = IpKey> = RateLimiter<K, DefaultKeyedStateStore<K>, SharedClock>;

/// Why a connection is refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitRefusal {
    /// The IP opens connections too fast; retry after this many seconds.
    IpRate { retry_after: u64 },
    /// The IP has too many open connections.
    IpCap,
    /// The identified user has too many open connections.
    UserCap,
    /// The server is at its global connection cap.
    Capacity,
}

/// The shared limit state.
pub struct Limits {
    settings: LimitSettings,
    global: Arc<Semaphore>,
    ip_open: Arc<OpenPerKey<IpKey>>,
    ip_connects: KeyedLimiter,
    ip_messages: KeyedLimiter,
    ip_auth_failures: KeyedLimiter,
    /// IPs whose failure budget is spent, and until when.
    ip_locked_out: Mutex<HashMap<IpKey, Instant>>,
    users: UserLimits,
}

/// What an admitted connection holds; dropping it gives the places back.
pub struct ConnectionSlot {
    _global: OwnedSemaphorePermit,
    _ip: OpenSlot<IpKey>,
    _user: Option<OpenSlot<UserKey>>,
}

/// A keyed limiter on the [`SharedClock`], so that the waits it reports are
/// measured on the clock that set them.
fn keyed<K: std::hash::Hash + Eq + Clone>(burst: u32, refill: Duration) -> KeyedLimiter<K> {
    RateLimiter::new(
        quota(burst, refill),
        DefaultKeyedStateStore::default(),
        SharedClock,
    )
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
            ip_open: OpenPerKey::new(settings.ip_max_connections),
            ip_connects: keyed(settings.ip_connect_burst, settings.ip_connect_refill),
            ip_messages: keyed(settings.ip_message_burst, settings.ip_message_refill),
            ip_auth_failures: keyed(
                settings.ip_auth_failure_burst,
                settings.ip_auth_failure_refill,
            ),
            ip_locked_out: Mutex::default(),
            users: UserLimits::new(settings),
        }
    }

    /// The key the per-IP limits count `ip` under.
    pub fn key(&self, ip: IpAddr) -> IpKey {
        IpKey::new(ip, self.settings.ipv6_prefix)
    }

    /// Admits a new connection from `ip`, of `user` when it is identified
    /// (`None`: a guest), or says which limit refuses it. A refused
    /// connection holds no place under any cap.
    pub fn admit(
        &self,
        ip: IpKey,
        user: Option<&Arc<str>>,
    ) -> Result<ConnectionSlot, LimitRefusal> {
        if let Err(not_until) = self.ip_connects.check_key(&ip) {
            let wait = not_until.wait_time_from(SharedClock.now());
            return Err(LimitRefusal::IpRate {
                retry_after: wait.as_secs().max(1),
            });
        }
        let ip_slot = self.ip_open.try_open(&ip).ok_or(LimitRefusal::IpCap)?;
        let user_slot = match user {
            Some(user) => Some(self.users.try_open(user).ok_or(LimitRefusal::UserCap)?),
            None => None,
        };
        let permit = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| LimitRefusal::Capacity)?;
        Ok(ConnectionSlot {
            _global: permit,
            _ip: ip_slot,
            _user: user_slot,
        })
    }

    /// Whether `ip` is locked out for failed token checks: the seconds to
    /// wait (at least 1), or `None` when its token may be checked.
    pub fn auth_locked_out(&self, ip: IpKey) -> Option<u64> {
        let mut locked = lock(&self.ip_locked_out);
        let until = *locked.get(&ip)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            locked.remove(&ip);
            return None;
        }
        Some(left.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Counts a failed token check from `ip`; once its budget is spent the
    /// IP is locked out until the next attempt refills.
    pub fn auth_failed(&self, ip: IpKey) {
        if let Err(not_until) = self.ip_auth_failures.check_key(&ip) {
            // Capped so that an absurd refill setting cannot overflow Instant.
            let wait = not_until
                .wait_time_from(SharedClock.now())
                .min(Duration::from_secs(86_400));
            lock(&self.ip_locked_out).insert(ip, Instant::now() + wait);
        }
    }

    /// Counts one message against its IP's budget; false when over it.
    pub fn ip_message(&self, ip: IpKey) -> bool {
        self.ip_messages.check_key(&ip).is_ok()
    }

    /// Counts one message against an identified user's budget, which all of
    /// its connections share; false when over it.
    pub fn user_message(&self, user: &Arc<str>) -> bool {
        self.users.message(user)
    }

    /// A fresh per-connection message limiter.
    pub fn connection_limiter(&self) -> ConnectionLimiter {
        RateLimiter::direct_with_clock(
            quota(self.settings.message_burst, self.settings.message_refill),
            SharedClock,
        )
    }

    /// Forgets IPs and users whose limiters are back to full, and frees the space.
    pub fn prune(&self) {
        for limiter in [&self.ip_connects, &self.ip_messages, &self.ip_auth_failures] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.users.prune();
        let now = Instant::now();
        let mut locked = lock(&self.ip_locked_out);
        locked.retain(|_, until| *until > now);
        locked.shrink_to_fit();
    }

    /// Keys held by the keyed limiters and the lock-out list (for tests of pruning).
    #[cfg(test)]
    pub fn tracked_ips(&self) -> usize {
        self.ip_connects.len()
            + self.ip_messages.len()
            + self.ip_auth_failures.len()
            + lock(&self.ip_locked_out).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4(last: u8) -> IpKey {
        IpKey::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 64)
    }

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
            ip_auth_failure_burst: 3,
            ip_auth_failure_refill: Duration::from_secs(60),
            user_max_connections: 2,
            user_message_burst: 4,
            user_message_refill: Duration::from_secs(60),
            ipv6_prefix: 64,
            max_text_chars: 500,
            max_rooms_per_connection: 16,
            max_message_bytes: 2048,
        }
    }

    #[test]
    fn per_ip_and_global_caps_release_on_drop() {
        let limits = Limits::new(&settings());
        let a = v4(2);
        let b = v4(3);
        let a1 = limits.admit(a, None).unwrap();
        let _a2 = limits.admit(a, None).unwrap();
        assert_eq!(limits.admit(a, None).err(), Some(LimitRefusal::IpCap));
        let _b1 = limits.admit(b, None).unwrap();
        assert_eq!(limits.admit(b, None).err(), Some(LimitRefusal::Capacity));
        drop(a1);
        let _b2 = limits.admit(b, None).unwrap();
        assert_eq!(limits.admit(b, None).err(), Some(LimitRefusal::IpCap));
        let c = v4(4);
        assert_eq!(limits.admit(c, None).err(), Some(LimitRefusal::Capacity));
    }

    #[test]
    fn a_users_connections_are_capped_across_ips_and_refusals_hold_nothing() {
        let mut s = settings();
        s.max_connections = 5;
        let limits = Limits::new(&s);
        let (ana, bo): (Arc<str>, Arc<str>) = (Arc::from("ana"), Arc::from("bo"));
        let first = limits.admit(v4(1), Some(&ana)).unwrap();
        let _second = limits.admit(v4(2), Some(&ana)).unwrap();
        assert_eq!(
            limits.admit(v4(3), Some(&ana)).err(),
            Some(LimitRefusal::UserCap)
        );
        // The refused one gave its IP's place back: v4(3) still has two.
        let _guest = limits.admit(v4(3), None).unwrap();
        let _bo = limits.admit(v4(3), Some(&bo)).unwrap();
        drop(first);
        let _again = limits.admit(v4(4), Some(&ana)).unwrap();
        let _full = limits.admit(v4(4), None).unwrap();
        // At the global cap a user's place is given back too.
        assert_eq!(
            limits.admit(v4(5), Some(&Arc::from("cy"))).err(),
            Some(LimitRefusal::Capacity)
        );
        assert_eq!(limits.users.tracked(), 2, "ana and bo, not cy");
    }

    #[test]
    fn connect_rate_refuses_with_retry_after() {
        let mut s = settings();
        s.ip_connect_burst = 1;
        s.ip_connect_refill = Duration::from_secs(30);
        let limits = Limits::new(&s);
        let ip = v4(1);
        let _first = limits.admit(ip, None).unwrap();
        match limits.admit(ip, None) {
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
    fn spent_auth_failure_budget_locks_out_that_ip_only() {
        let limits = Limits::new(&settings());
        let (a, b) = (v4(2), v4(3));
        for _ in 0..3 {
            assert_eq!(limits.auth_locked_out(a), None);
            limits.auth_failed(a);
        }
        assert_eq!(
            limits.auth_locked_out(a),
            None,
            "the burst is three failures"
        );
        limits.auth_failed(a);
        let wait = limits.auth_locked_out(a).expect("locked out");
        assert!((59..=60).contains(&wait), "{wait}");
        assert_eq!(limits.auth_locked_out(b), None);
        limits.prune(); // still locked: kept
        assert!(limits.auth_locked_out(a).is_some());
    }

    #[test]
    fn a_lock_out_ends_when_one_attempt_refills() {
        let mut s = settings();
        s.ip_auth_failure_burst = 1;
        s.ip_auth_failure_refill = Duration::from_millis(50);
        let limits = Limits::new(&s);
        let ip = v4(1);
        limits.auth_failed(ip);
        limits.auth_failed(ip);
        assert_eq!(
            limits.auth_locked_out(ip),
            Some(1),
            "rounded up to a second"
        );
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(limits.auth_locked_out(ip), None);
        limits.prune();
    }

    #[test]
    fn ip_message_budget_spans_connections_and_prunes() {
        let limits = Limits::new(&settings());
        let ip = v4(1);
        assert_eq!((0..8).filter(|_| limits.ip_message(ip)).count(), 5);
        assert!(limits.tracked_ips() >= 1);
        limits.prune(); // still limited: kept
        assert!(limits.tracked_ips() >= 1);
    }

    #[test]
    fn an_ipv6_prefix_is_one_client_for_every_per_ip_limit() {
        let limits = Limits::new(&settings());
        let key = |text: &str| limits.key(text.parse().expect("an address"));
        let (a, b, other) = (
            key("2001:db8::1"),
            key("2001:db8::2"),
            key("2001:db8:0:1::1"),
        );
        assert_eq!(a, b);
        for _ in 0..4 {
            limits.auth_failed(a);
        }
        assert!(
            limits.auth_locked_out(b).is_some(),
            "the same /64 is locked out"
        );
        assert_eq!(limits.auth_locked_out(other), None);
        let _a = limits.admit(a, None).expect("first");
        let _b = limits.admit(b, None).expect("second");
        assert_eq!(
            limits.admit(key("2001:db8::3"), None).err(),
            Some(LimitRefusal::IpCap)
        );
        assert_eq!((0..8).filter(|_| limits.ip_message(b)).count(), 5);
        assert_eq!(key("::ffff:127.0.0.1"), v4(1), "IPv4-mapped is IPv4");
    }
}
