//! When a connection pings: heartbeat deadlines on a shared grid, so the
//! connections due at about the same time are woken in one timer tick.
//!
//! Without the grid every connection's ping fires at its own millisecond:
//! at 19,000 connections and a 30 s interval that is a worker wake-up (and a
//! second one for the pong) for almost every millisecond. On the grid the
//! pings of one slot go out together and their pongs come back together, so
//! a worker wakes about once per slot and handles them in one pass. A ping
//! is late by less than one slot (`interval / SLOTS`).

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Slots per heartbeat interval: 30 s makes slots of about 234 ms.
const SLOTS: u32 = 128;

/// The first ping of connection `id`: 15-30 s from now at 30 s, spread by
/// id over the slots, so connections made together do not all ping in one.
pub(super) fn first(interval: Duration, id: u64) -> Instant {
    let after = interval / 2 + interval.mul_f64((id % 1000) as f64 / 2000.0);
    slot_at(Instant::now() + after, interval)
}

/// The ping after the one sent now.
pub(super) fn next(interval: Duration) -> Instant {
    slot_at(Instant::now() + interval, interval)
}

/// `at` moved up to the next slot boundary of the grid for `interval`.
fn slot_at(at: Instant, interval: Duration) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    align(epoch, at, interval / SLOTS)
}

/// `at` rounded up to `epoch + k × slot`; never earlier than `at`.
fn align(epoch: Instant, at: Instant, slot: Duration) -> Instant {
    let slot_ns = slot.as_nanos();
    if slot_ns == 0 || at <= epoch {
        return at;
    }
    let since = (at - epoch).as_nanos();
    let slots = since.div_ceil(slot_ns);
    // Saturates far beyond any uptime; then no rounding rather than a panic.
    match u64::try_from(slots * slot_ns) {
        Ok(ns) => epoch + Duration::from_nanos(ns),
        Err(_) => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_in_one_slot_share_one_instant() {
        let epoch = Instant::now();
        let slot = Duration::from_millis(250);
        let a = align(epoch, epoch + Duration::from_millis(1001), slot);
        let b = align(epoch, epoch + Duration::from_millis(1249), slot);
        assert_eq!(a, b);
        assert_eq!(a, epoch + Duration::from_millis(1250));
    }

    #[test]
    fn never_earlier_and_late_by_less_than_a_slot() {
        let epoch = Instant::now();
        let slot = Duration::from_millis(234);
        for ms in [0u64, 1, 233, 234, 235, 29_999, 30_000] {
            let at = epoch + Duration::from_millis(ms);
            let aligned = align(epoch, at, slot);
            assert!(aligned >= at);
            assert!(aligned - at < slot);
        }
    }

    #[test]
    fn a_zero_slot_or_a_time_before_the_epoch_is_left_alone() {
        let epoch = Instant::now() + Duration::from_secs(5);
        let at = Instant::now();
        assert_eq!(align(epoch, at, Duration::from_millis(10)), at);
        assert_eq!(
            align(epoch, epoch + Duration::from_secs(1), Duration::ZERO),
            epoch + Duration::from_secs(1)
        );
    }
}
