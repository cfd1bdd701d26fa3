//! One room's fan-out, run by one caller at a time: frames queued in the
//! room's order are handed to every member in batches, written straight to
//! idle sockets.
//!
//! Publishing only queues (under whatever lock orders the room's messages);
//! the first caller to find the room idle becomes its runner and writes once
//! that lock is released, so other publishers never wait on a fan-out, and
//! frames that arrive while a pass runs go out together in the next one, one
//! vectored write per member (batching exactly when the server falls behind,
//! never by waiting). A runner that keeps finding work hands it to a task
//! after a few passes, so one worker thread is not held by one room.

use std::sync::Arc;
use std::time::Instant;

use crate::fanout::outbox::Pushed;
use crate::fanout::rooms::Room;
use crate::metrics::Metrics;
use crate::ws::transport::Outgoing;

/// Passes a runner makes in its caller before handing over to a task.
const INLINE_PASSES: usize = 2;

/// Members handed frames between two reads of the clock for the latency
/// histogram.
const CLOCK_EVERY: usize = 16;

/// The right (and the duty) to run one room's queued fan-out.
#[must_use = "the room's frames wait until its runner runs"]
pub struct Runner {
    pub(crate) room: Arc<Room>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Runner {
    /// Runs the room's queue in the caller, then in a task if it refills.
    pub fn run(self) {
        for _ in 0..INLINE_PASSES {
            if !self.pass() {
                return;
            }
        }
        self.spawn();
    }

    /// Runs the room's queue in a task of its own (for callers that must
    /// not write, such as a broker's single receiving task).
    pub fn spawn(self) {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    while self.pass() {
                        tokio::task::yield_now().await;
                    }
                });
            }
            // Outside a runtime (some tests): here, to the end.
            Err(_) => while self.pass() {},
        }
    }

    /// Hands everything queued now to every member; false (and the room's
    /// runner released) when nothing was queued.
    fn pass(&self) -> bool {
        let mut tally = Tally::default();
        let Some((batch, members)) = self.room.take_batch(&mut tally) else {
            return false;
        };
        let latest = self.room.latest;
        let items: Vec<Outgoing> = batch.into_iter().map(|d| d.outgoing(latest)).collect();
        let latency = self.metrics.fanout_latency.local();
        let mut delivered = 0u64;
        let mut now = None;
        for (n, member) in members.iter().enumerate() {
            // One clock read per few members, not per member (it showed in
            // profiles of big rooms): a latency is early by at most the time
            // those members' writes took, tens of microseconds.
            if n % CLOCK_EVERY == 0 {
                now = None;
            }
            member.outbox.push_all(
                &items,
                &mut |item| {
                    if let Some(at) = item.accepted_at {
                        let now = *now.get_or_insert_with(Instant::now);
                        latency.observe(now.duration_since(at).as_secs_f64());
                        delivered += 1;
                    }
                },
                &mut |pushed| tally.add(pushed),
            );
        }
        latency.flush();
        if delivered > 0 {
            // Frames queued instead are counted by the connection's flush.
            self.metrics.delivered.inc_by(delivered);
            self.metrics.rooms.direct_writes.inc_by(delivered);
        }
        tally.record(&self.metrics);
        true
    }
}

/// Drop counts of one fan-out, recorded once instead of per recipient.
#[derive(Default)]
pub(crate) struct Tally {
    full: u64,
    slow: u64,
    closed: u64,
    superseded: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, pushed: Pushed) {
        match pushed {
            Pushed::Queued => {}
            Pushed::QueueFull => self.full += 1,
            Pushed::SlowConsumer => self.slow += 1,
            Pushed::Closed => self.closed += 1,
            Pushed::Superseded => self.superseded += 1,
        }
    }

    pub(crate) fn record(&self, m: &Metrics) {
        if self.full > 0 {
            m.drops_queue_full.inc_by(self.full);
        }
        if self.slow > 0 {
            m.drops_slow_consumer.inc_by(self.slow);
            m.slow_consumer_closes.inc_by(self.slow);
        }
        if self.closed > 0 {
            m.drops_closed.inc_by(self.closed);
        }
        if self.superseded > 0 {
            m.drops_superseded.inc_by(self.superseded);
        }
    }
}
