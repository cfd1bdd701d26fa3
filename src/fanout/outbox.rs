//! One connection's bounded outbound queue, filled by fan-out and drained by
//! the connection's own task, and the direct write that skips both.
//!
//! Fan-out never waits on a connection: a full queue is a counted drop, and a
//! run of drops marks the connection as a slow consumer to be closed with 1013.
//!
//! While the connection's task has nothing to write (it holds no *claim*) and
//! the queue is empty, fan-out writes the frames to the socket itself, under
//! the queue's lock, as uWebSockets does from its loop: no task wake-up, no
//! second lock, no copy of the frame. Whoever writes holds the right to: the
//! task from its claim until everything it took is written, fan-out only
//! under the lock and only when the task holds no claim. What the socket does
//! not take (part of a frame, or all of it) goes into the queue, ahead of
//! anything newer, and the task finishes it.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::{Arc, Mutex};

use std::task::{Context, Poll, Waker};

use tokio::net::TcpStream;

use crate::protocol::close::CloseCode;
use crate::ws::transport::{Outgoing, WRITE_BATCH};

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
    /// The owner task holds frames it has not finished writing: only it
    /// may write to the socket.
    claimed: bool,
    /// The queue's first frame is the rest of one a direct write began: it
    /// must be written before anything else, and is never dropped.
    partial_front: bool,
    /// A heartbeat is due: the owner pings (or gives up on a silent peer)
    /// when it sees this.
    heartbeat: bool,
    /// The owner task, parked until signalled. Kept under the queue's own
    /// lock rather than in a `Notify`, so an idle connection carries no
    /// future for it.
    waker: Option<Waker>,
    /// The socket, for direct writes: plain TCP only, until the owner
    /// starts closing.
    socket: Option<Arc<TcpStream>>,
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
                claimed: false,
                partial_front: false,
                heartbeat: false,
                waker: None,
                socket: None,
            }),
            capacity: capacity.min(u32::MAX as usize) as u32,
            drop_limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets fan-out write to `socket` directly while the owner is idle, and
    /// caps the socket's kernel send buffer at `send_buffer` bytes.
    pub fn attach(&self, socket: Arc<TcpStream>, send_buffer: usize) {
        // Frames written here skip `outbound_queue`, so the kernel's buffer
        // is what a stalled reader may hold: keep it from autotuning to
        // megabytes. Should the kernel refuse, it keeps autotuning.
        if let Err(e) = socket2::SockRef::from(&*socket).set_send_buffer_size(send_buffer) {
            tracing::debug!(error = %e, "SO_SNDBUF not set");
        }
        self.lock().socket = Some(socket);
    }

    /// Ends direct writes for good: the owner is closing the connection.
    pub fn detach(&self) {
        self.lock().socket = None;
    }

    /// Queues a frame without waiting.
    pub fn push(&self, item: Outgoing) -> Pushed {
        let mut s = self.lock();
        let mut wake = None;
        let pushed = self.push_locked(&mut s, item, &mut wake);
        drop(s);
        if let Some(w) = wake {
            w.wake();
        }
        pushed
    }

    /// Hands `items` (one room's frames, in order) to the connection: written
    /// to the socket now when the owner is idle (and the room is not a
    /// latest-delivery one), queued otherwise. `written`
    /// sees each frame the socket took whole, `queued` the fate of each other.
    pub fn push_all(
        &self,
        items: &[Outgoing],
        written: &mut dyn FnMut(&Outgoing),
        queued: &mut dyn FnMut(Pushed),
    ) {
        let mut s = self.lock();
        let mut rest = items;
        let mut wake = None;
        // A latest-delivery room's frames wait in the queue, where a newer
        // one can still replace them; in the kernel's buffer it could not.
        // (A batch is one room's: its frames share `latest`.)
        let latest = items.first().is_some_and(|i| i.latest != 0);
        let direct = s.close.is_none() && !s.claimed && s.queue.is_empty() && !latest;
        let took = (s.socket.as_deref())
            .filter(|_| direct)
            .map(|sock| write_direct(sock, items));
        if let Some(mut n) = took {
            let mut whole = 0;
            while let Some(item) = items.get(whole).filter(|i| i.frame.len() <= n) {
                n -= item.frame.len();
                written(item);
                whole += 1;
            }
            rest = &items[whole..];
            if let Some(item) = rest.first().filter(|_| n > 0) {
                // Part of a frame went out: the rest goes first, always.
                let remainder = Outgoing {
                    frame: item.frame.slice(n..),
                    accepted_at: item.accepted_at,
                    latest: 0,
                };
                queued(Self::enqueue(&mut s, remainder, &mut wake));
                s.partial_front = true;
                rest = &rest[1..];
            }
        }
        for item in rest {
            queued(self.push_locked(&mut s, item.clone(), &mut wake));
        }
        drop(s);
        if let Some(w) = wake {
            w.wake();
        }
    }

    fn push_locked(&self, s: &mut State, item: Outgoing, wake: &mut Option<Waker>) -> Pushed {
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
                // The rest of a frame already begun stays: the close frame
                // must follow whole frames.
                s.queue.truncate(usize::from(s.partial_front));
                Self::signal(s, wake);
                return Pushed::SlowConsumer;
            }
            return Pushed::QueueFull;
        }
        Self::enqueue(s, item, wake)
    }

    fn enqueue(s: &mut State, item: Outgoing, wake: &mut Option<Waker>) -> Pushed {
        let was_empty = s.queue.is_empty();
        s.queue.push_back(item);
        // The drainer empties the queue in one go, so only the first frame
        // after that needs to wake it.
        if was_empty {
            Self::signal(s, wake);
        }
        Pushed::Queued
    }

    /// Queues a frame that answers this connection's own action (its
    /// `history` on a join, a `left`): past the capacity, because dropping
    /// it would break the join's no-gap guarantee, and bounded anyway by
    /// the connection's own action rate. Only a closing connection drops it.
    pub fn push_reply(&self, item: Outgoing) -> Pushed {
        let mut s = self.lock();
        if s.close.is_some() {
            return Pushed::Closed;
        }
        let mut wake = None;
        let pushed = Self::enqueue(&mut s, item, &mut wake);
        drop(s);
        if let Some(w) = wake {
            w.wake();
        }
        pushed
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub fn request_close(&self, code: CloseCode) {
        let mut s = self.lock();
        if s.close.is_none() {
            s.close = Some(code);
        }
        let mut wake = None;
        Self::signal(&mut s, &mut wake);
        drop(s);
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Tells the owner that a heartbeat is due.
    pub fn heartbeat(&self) {
        let mut s = self.lock();
        s.heartbeat = true;
        let mut wake = None;
        Self::signal(&mut s, &mut wake);
        drop(s);
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Marks the outbox signalled and takes its owner's waker, to be woken
    /// once the lock is released.
    fn signal(s: &mut State, wake: &mut Option<Waker>) {
        s.signalled = true;
        if let Some(w) = s.waker.take() {
            *wake = Some(w);
        }
    }

    /// The close requested, if any.
    pub fn close_requested(&self) -> Option<CloseCode> {
        self.lock().close
    }

    /// Ready once there is something new to drain, a close was requested
    /// or a heartbeat fell due since the last time it was ready; `true` when
    /// a heartbeat is due (told once).
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut s = self.lock();
        if std::mem::take(&mut s.signalled) {
            return Poll::Ready(std::mem::take(&mut s.heartbeat));
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Moves every queued frame into `into` (which must be empty), swapping
    /// buffers so that steady traffic allocates nothing, and resets the drop
    /// run: the connection is keeping up. The owner holds a claim from then
    /// (fan-out stops writing directly) if it took anything.
    pub fn drain_into(&self, into: &mut VecDeque<Outgoing>) -> Option<CloseCode> {
        let mut s = self.lock();
        std::mem::swap(&mut s.queue, into);
        s.consecutive_drops = 0;
        s.partial_front = false;
        s.claimed |= !into.is_empty();
        s.close
    }

    /// The owner is about to write frames of its own: fan-out stops writing
    /// directly, and the rest of a frame it began moves to `into` (empty),
    /// to go first. Anything else queued stays for the next drain, behind
    /// the owner's frames, as before direct writes.
    pub fn claim(&self, into: &mut VecDeque<Outgoing>) {
        let mut s = self.lock();
        s.claimed = true;
        if std::mem::take(&mut s.partial_front) {
            into.extend(s.queue.pop_front());
        }
    }

    /// The owner wrote everything it took: fan-out may write directly again.
    pub fn release(&self) {
        self.lock().claimed = false;
    }
}

/// One `send` of up to [`WRITE_BATCH`] frames; the bytes taken (0 when the
/// socket would block or failed: the owner sees a failure on its own next
/// write). `send(2)` rather than tokio's `write(2)`: a socket call skips the
/// file layer's checks and notifications, which showed in profiles of big
/// fan-outs. Tokio's readiness is not touched: the owner is not waiting for
/// it, and clears it itself if its own write would block.
fn write_direct(socket: &TcpStream, items: &[Outgoing]) -> usize {
    let socket = socket2::SockRef::from(socket);
    let sent = match items {
        [] => return 0,
        [one] => socket.send(&one.frame),
        _ => {
            let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
            let n = items.len().min(WRITE_BATCH);
            for (slice, item) in slices.iter_mut().zip(items) {
                *slice = IoSlice::new(&item.frame);
            }
            socket.send_vectored(&slices[..n])
        }
    };
    sent.unwrap_or(0)
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
