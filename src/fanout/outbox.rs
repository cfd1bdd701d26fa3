//! One connection's bounded outbound queue, filled by fan-out and drained by
//! the connection's own task.
//!
//! Fan-out never waits on a connection: a full queue is a counted drop, and a
//! run of drops marks the connection as a slow consumer to be closed with 1013.

use std::collections::VecDeque;
use std::sync::Mutex;

use std::task::{Context, Poll, Waker};

use crate::protocol::close::CloseCode;
use crate::ws::transport::Outgoing;

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The queue was full; the frame is lost for this connection.
    QueueFull,
    /// This drop made the connection a slow consumer: it is being closed.
    SlowConsumer,
    /// The connection is closing; the frame is not sent.
    Closed,
    /// The queue was full: the frame replaced the oldest queued frame of its
    /// `delivery = "latest"` room, which is lost instead.
    Superseded,
}

struct State {
    queue: VecDeque<Outgoing>,
    consecutive_drops: u32,
    close: Option<CloseCode>,
    /// Set by a push into an empty queue or a close request; cleared when
    /// the owner sees it. Like a semaphore permit of one.
    signalled: bool,
    /// The owner task, parked until signalled. Kept under the queue's own
    /// lock rather than in a `Notify`, so an idle connection carries no
    /// future for it.
    waker: Option<Waker>,
}

/// The queue and the wake-up of the task that drains it.
pub struct Outbox {
    state: Mutex<State>,
    capacity: u32,
    drop_limit: u32,
}

impl Outbox {
    /// An empty queue; nothing is allocated until the first frame.
    pub fn new(capacity: usize, drop_limit: u32) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                consecutive_drops: 0,
                close: None,
                signalled: false,
                waker: None,
            }),
            capacity: capacity.min(u32::MAX as usize) as u32,
            drop_limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame without waiting.
    pub fn push(&self, item: Outgoing) -> Pushed {
        let mut s = self.lock();
        if s.close.is_some() {
            return Pushed::Closed;
        }
        if s.queue.len() >= self.capacity as usize {
            // A stale event of a latest-delivery room gives its place to the
            // newest: the consumer skips ahead instead of falling behind.
            if item.latest != 0 {
                if let Some(at) = s.queue.iter().position(|q| q.latest == item.latest) {
                    s.queue.remove(at);
                    s.queue.push_back(item);
                    return Pushed::Superseded;
                }
            }
            s.consecutive_drops += 1;
            if s.consecutive_drops >= self.drop_limit {
                s.close = Some(CloseCode::TryAgainLater);
                s.queue.clear();
                Self::signal(s);
                return Pushed::SlowConsumer;
            }
            return Pushed::QueueFull;
        }
        Self::enqueue(s, item)
    }

    fn enqueue(mut s: std::sync::MutexGuard<'_, State>, item: Outgoing) -> Pushed {
        let was_empty = s.queue.is_empty();
        s.queue.push_back(item);
        // The drainer empties the queue in one go, so only the first frame
        // after that needs to wake it.
        if was_empty {
            Self::signal(s);
        }
        Pushed::Queued
    }

    /// Queues a frame that answers this connection's own action (its
    /// `history` on a join, a `left`): past the capacity, because dropping
    /// it would break the join's no-gap guarantee, and bounded anyway by
    /// the connection's own action rate. Only a closing connection drops it.
    pub fn push_reply(&self, item: Outgoing) -> Pushed {
        let s = self.lock();
        if s.close.is_some() {
            return Pushed::Closed;
        }
        Self::enqueue(s, item)
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub fn request_close(&self, code: CloseCode) {
        let mut s = self.lock();
        if s.close.is_none() {
            s.close = Some(code);
        }
        Self::signal(s);
    }

    /// Marks the outbox signalled and wakes its owner (after unlocking).
    fn signal(mut s: std::sync::MutexGuard<'_, State>) {
        s.signalled = true;
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The close requested, if any.
    pub fn close_requested(&self) -> Option<CloseCode> {
        self.lock().close
    }

    /// Ready once there is something new to drain or a close was requested
    /// since the last time it was ready.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if std::mem::take(&mut s.signalled) {
            return Poll::Ready(());
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Moves every queued frame into `into` (which must be empty), swapping
    /// buffers so that steady traffic allocates nothing. Resets the drop run:
    /// the connection is keeping up.
    pub fn drain_into(&self, into: &mut VecDeque<Outgoing>) -> Option<CloseCode> {
        let mut s = self.lock();
        std::mem::swap(&mut s.queue, into);
        s.consecutive_drops = 0;
        s.close
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame() -> Outgoing {
        Outgoing {
            frame: Bytes::from_static(b"x"),
            accepted_at: None,
            latest: 0,
        }
    }

    #[test]
    fn a_latest_room_replaces_its_oldest_queued_frame_and_never_closes() {
        let outbox = Outbox::new(3, 2);
        let tagged = |n: &'static [u8], latest| Outgoing {
            frame: Bytes::from_static(n),
            accepted_at: None,
            latest,
        };
        outbox.push(tagged(b"other", 0));
        for n in [&b"1"[..], b"2", b"3", b"4", b"5", b"6"] {
            let pushed = outbox.push(tagged(n, 7));
            assert_ne!(pushed, Pushed::SlowConsumer);
        }
        assert_eq!(outbox.close_requested(), None);
        let mut into = VecDeque::new();
        outbox.drain_into(&mut into);
        let frames: Vec<&[u8]> = into.iter().map(|o| &o.frame[..]).collect();
        assert_eq!(frames, [&b"other"[..], b"5", b"6"]);
    }

    #[test]
    fn overflow_drops_then_closes_a_slow_consumer() {
        let outbox = Outbox::new(2, 3);
        assert_eq!(outbox.push(frame()), Pushed::Queued);
        assert_eq!(outbox.push(frame()), Pushed::Queued);
        assert_eq!(outbox.push(frame()), Pushed::QueueFull);
        assert_eq!(outbox.push(frame()), Pushed::QueueFull);
        assert_eq!(outbox.push(frame()), Pushed::SlowConsumer);
        assert_eq!(outbox.push(frame()), Pushed::Closed);
        assert_eq!(outbox.close_requested(), Some(CloseCode::TryAgainLater));
    }

    #[test]
    fn draining_resets_the_drop_run() {
        let outbox = Outbox::new(1, 2);
        outbox.push(frame());
        assert_eq!(outbox.push(frame()), Pushed::QueueFull);
        let mut into = VecDeque::new();
        assert_eq!(outbox.drain_into(&mut into), None);
        assert_eq!(into.len(), 1);
        outbox.push(frame());
        assert_eq!(outbox.push(frame()), Pushed::QueueFull);
    }
}
