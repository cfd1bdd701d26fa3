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
//!
//! A pass over a big room (one that took [`MIN_PAUSED_PASS`] or more) that
//! carried [`MIN_PAUSED_FRAMES`] frames or more (so they arrive faster than
//! passes end) is followed by a pause of a share of its own length
//! (`rooms.fanout_pause`) before the next: what is published meanwhile
//! reaches each member in one write instead of one each. Sends are most of
//! a delivery's cost (the kernel's TCP send), so a busy big room spends
//! about a third less CPU per delivery; a message waits at most the pause,
//! and a room whose passes are short, or carry one frame, never pauses
//! (docs/performance.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::RoomSettings;
use crate::fanout::outbox::Pushed;
use crate::fanout::rooms::Room;
use crate::metrics::Metrics;
use crate::ws::transport::Outgoing;

/// Passes a runner makes in its caller before handing over to a task.
const INLINE_PASSES: usize = 2;

/// Members handed frames between two reads of the clock for the latency
/// histogram.
const CLOCK_EVERY: usize = 16;

/// The shortest pass followed by a pause: shorter ones are small rooms,
/// where a pause (rounded up to the runtime's 1 ms timer) would cost a
/// message more than the writes it saves.
const MIN_PAUSED_PASS: Duration = Duration::from_millis(1);

/// The fewest frames in a pass followed by a pause. A pass that carried one
/// only means nothing arrived while the one before it ran: a pause there
/// would rarely gather a second frame, and every message would wait it
/// (rooms of 500 at 150 msg/s: p99 doubled, CPU unchanged).
const MIN_PAUSED_FRAMES: usize = 2;

/// How long a room's runner waits after a long pass (`rooms.fanout_pause`,
/// `rooms.fanout_pause_max`).
#[derive(Debug, Clone, Copy)]
pub struct Pause {
    /// The pause as a share of the pass before it; 0: never.
    ratio: f64,
    /// The longest pause.
    max: Duration,
}

impl Pause {
    /// The room settings' pause.
    pub fn of(settings: &RoomSettings) -> Pause {
        Pause {
            ratio: settings.fanout_pause,
            max: settings.fanout_pause_max,
        }
    }

    /// The wait before the pass after one that took `took` to hand out
    /// `frames` frames; `None`: none.
    pub fn after(&self, took: Duration, frames: usize) -> Option<Duration> {
        let on = self.ratio > 0.0 && took >= MIN_PAUSED_PASS && frames >= MIN_PAUSED_FRAMES;
        // `ratio` is checked finite and at most 4 when the settings load.
        on.then(|| took.mul_f64(self.ratio).min(self.max))
            .filter(|d| !d.is_zero())
    }
}

/// The right (and the duty) to run one room's queued fan-out.
#[must_use = "the room's frames wait until its runner runs"]
pub struct Runner {
    pub(crate) room: Arc<Room>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) pause: Pause,
}

impl Runner {
    /// Runs the room's queue in the caller, then in a task if it refills.
    pub fn run(self) {
        for _ in 0..INLINE_PASSES {
            let Some((took, frames)) = self.pass() else {
                return;
            };
            // The pause is a timer's: the caller does not wait on it.
            if let pause @ Some(_) = self.pause.after(took, frames) {
                return self.spawn_after(pause);
            }
        }
        self.spawn();
    }

    /// Runs the room's queue in a task of its own (for callers that must
    /// not write, such as a broker's single receiving task).
    pub fn spawn(self) {
        self.spawn_after(None);
    }

    /// [`Runner::spawn`], the task first waiting `pause`. The room keeps
    /// its runner meanwhile: what is published queues for the next pass.
    fn spawn_after(self, pause: Option<Duration>) {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let mut pause = pause;
                    loop {
                        if let Some(wait) = pause {
                            self.metrics.rooms.fanout_pauses.inc();
                            tokio::time::sleep(wait).await;
                        }
                        let Some((took, frames)) = self.pass() else {
                            break;
                        };
                        pause = self.pause.after(took, frames);
                        if pause.is_none() {
                            tokio::task::yield_now().await;
                        }
                    }
                });
            }
            // Outside a runtime (some tests): here, to the end, unpaused.
            Err(_) => while self.pass().is_some() {},
        }
    }

    /// Hands everything queued now to every member; how long that took and
    /// how many frames it handed out, or `None` (and the room's runner
    /// released) when nothing was queued.
    fn pass(&self) -> Option<(Duration, usize)> {
        let mut tally = Tally::default();
        let (batch, members) = self.room.take_batch(&mut tally)?;
        let started = Instant::now();
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
        Some((started.elapsed(), items.len()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_passes_of_several_frames_pause_and_never_past_the_maximum() {
        let pause = Pause {
            ratio: 0.5,
            max: Duration::from_millis(5),
        };
        assert_eq!(pause.after(Duration::from_micros(999), 5), None);
        assert_eq!(
            pause.after(Duration::from_millis(2), 2),
            Some(Duration::from_millis(1))
        );
        assert_eq!(pause.after(Duration::from_millis(2), 1), None);
        assert_eq!(
            pause.after(Duration::from_millis(30), 9),
            Some(Duration::from_millis(5))
        );
        let off = Pause {
            ratio: 0.0,
            ..pause
        };
        assert_eq!(off.after(Duration::from_millis(30), 9), None);
    }
}
