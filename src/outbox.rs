//! One connection's bounded outbound queue, filled by fan-out and drained by
//! the connection's own task, or written straight to the socket by the
//! fan-out itself while the connection is idle.
//!
//! Fan-out never waits on a connection: a full queue is a counted drop, and a
//! run of drops marks the connection as a slow consumer to be closed with 1013.
//!
//! Waking the owner task for every delivery costs a scheduler round trip and
//! a poll per frame, about as much as the write itself. So while the owner
//! has nothing in flight (`direct`), a push only queues the frame and the
//! fan-out writes the queue out afterwards ([`Outbox::flush_direct`]), outside
//! the broker's ordering lock. The queue's mutex is the write token: frames
//! leave in queue order whoever writes them, and whatever the socket does not
//! take at once goes back to the owner, which waits for it to drain.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::close::CloseCode;
use crate::transport;

/// One encoded frame waiting to be written.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The complete WebSocket frame, shared by every recipient.
    pub frame: Bytes,
    /// When the message was accepted, for the fan-out latency histogram;
    /// `None` for frames that are not chat messages.
    pub accepted_at: Option<Instant>,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued without waking the owner: the caller must call
    /// [`Outbox::flush_direct`] or [`Outbox::wake_deferred`] next.
    Deferred,
    /// The queue was full; the frame is lost for this connection.
    QueueFull,
    /// This drop made the connection a slow consumer: it is being closed.
    SlowConsumer,
    /// The connection is closing; the frame is not sent.
    Closed,
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
    /// The plain TCP socket, for writes from the fan-out path (never TLS).
    stream: Option<Arc<TcpStream>>,
    /// The owner has nothing in flight: pushers write the queue themselves.
    direct: bool,
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
                stream: None,
                direct: false,
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
            s.consecutive_drops += 1;
            if s.consecutive_drops >= self.drop_limit {
                s.close = Some(CloseCode::TryAgainLater);
                s.queue.clear();
                Self::signal(s);
                return Pushed::SlowConsumer;
            }
            return Pushed::QueueFull;
        }
        let was_empty = s.queue.is_empty();
        s.queue.push_back(item);
        if s.direct {
            return Pushed::Deferred;
        }
        // The drainer empties the queue in one go, so only the first frame
        // after that needs to wake it.
        if was_empty {
            Self::signal(s);
        }
        Pushed::Queued
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub fn request_close(&self, code: CloseCode) {
        let mut s = self.lock();
        if s.close.is_none() {
            s.close = Some(code);
        }
        s.direct = false;
        Self::signal(s);
    }

    /// Lets pushers write to `stream` directly whenever the owner is idle.
    pub fn attach(&self, stream: Arc<TcpStream>) {
        self.lock().stream = Some(stream);
    }

    /// Stops writes from the fan-out path for good (the socket is closing).
    pub fn detach(&self) {
        let mut s = self.lock();
        s.direct = false;
        s.stream = None;
    }

    /// Called by the owner before it writes a frame of its own: pushers queue
    /// and wake it again, and frames deferred by a pusher are its to send.
    pub fn hold(&self) {
        let mut s = self.lock();
        if std::mem::take(&mut s.direct) && !s.queue.is_empty() {
            s.signalled = true;
        }
    }

    /// Writes frames deferred by [`Outbox::push`] to the socket, calling
    /// `done` for each one written whole. What the socket does not take now
    /// (or an error) goes back to the owner with a wake-up.
    pub fn flush_direct(&self, done: &mut dyn FnMut(&Outgoing)) {
        let mut s = self.lock();
        if !s.direct || s.queue.is_empty() {
            return;
        }
        let st = &mut *s;
        let Some(stream) = st.stream.as_deref() else {
            return;
        };
        let mut written = 0;
        match transport::write_plain(stream, &mut st.queue, &mut written, done) {
            Ok(true) => {
                st.consecutive_drops = 0;
                // Most connections are idle most of the time: hold no buffer
                // between messages (one allocation per write is noise next to
                // the write itself).
                st.queue = VecDeque::new();
            }
            result => {
                if written > 0 {
                    if let Some(front) = st.queue.front_mut() {
                        front.frame = front.frame.slice(written..);
                    }
                }
                // The owner sees an error itself on its next read or write.
                drop(result);
                st.direct = false;
                Self::signal(s);
            }
        }
    }

    /// Called by the owner when it has written everything and is about to
    /// wait: from now on pushers write for it, until it writes again.
    pub fn idle(&self) {
        let mut s = self.lock();
        if s.queue.is_empty() && s.stream.is_some() && s.close.is_none() {
            s.direct = true;
            s.queue = VecDeque::new();
        }
    }

    /// Hands frames deferred by [`Outbox::push`] to the owner instead of
    /// writing them here (for callers that must not spend time on writes).
    pub fn wake_deferred(&self) {
        let mut s = self.lock();
        if std::mem::take(&mut s.direct) && !s.queue.is_empty() {
            Self::signal(s);
        }
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
        if !into.is_empty() {
            s.direct = false;
        }
        s.close
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Outgoing {
        Outgoing {
            frame: Bytes::from_static(b"x"),
            accepted_at: None,
        }
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

    /// A connected pair of real sockets: (ours, the peer's std end).
    async fn pair() -> (Arc<TcpStream>, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let ours = TcpStream::from_std(ours).unwrap();
        // As after an upgrade: the reactor has seen the socket writable.
        ours.writable().await.unwrap();
        (Arc::new(ours), peer)
    }

    fn read_exact(peer: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        std::io::Read::read_exact(peer, &mut buf).unwrap();
        buf
    }

    fn text(t: &'static [u8]) -> Outgoing {
        Outgoing {
            frame: Bytes::from_static(t),
            accepted_at: None,
        }
    }

    #[tokio::test]
    async fn an_idle_owner_leaves_writes_to_the_pusher_until_it_writes_again() {
        let (stream, mut peer) = pair().await;
        let outbox = Outbox::new(8, 8);
        outbox.attach(stream);
        // Not idle yet: frames wait for the owner, which is woken.
        assert_eq!(outbox.push(text(b"a")), Pushed::Queued);
        let mut owner = VecDeque::new();
        assert_eq!(outbox.drain_into(&mut owner), None);
        assert_eq!(owner.len(), 1);
        outbox.idle();
        // Idle: pushes are deferred, and the pusher writes them in order.
        assert_eq!(outbox.push(text(b"b")), Pushed::Deferred);
        assert_eq!(outbox.push(text(b"c")), Pushed::Deferred);
        let mut written = 0;
        outbox.flush_direct(&mut |_| written += 1);
        assert_eq!(written, 2);
        assert_eq!(read_exact(&mut peer, 2), b"bc");
        // The owner takes the socket back: frames queue for it again, and a
        // deferred one left unwritten is handed to it.
        assert_eq!(outbox.push(text(b"d")), Pushed::Deferred);
        outbox.hold();
        outbox.flush_direct(&mut |_| panic!("the owner writes now"));
        assert_eq!(outbox.push(text(b"e")), Pushed::Queued);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(outbox.poll_ready(&mut cx).is_ready());
        owner.clear();
        outbox.drain_into(&mut owner);
        assert_eq!(owner.len(), 2);
        // A closing connection takes nothing more from the fan-out.
        outbox.idle();
        outbox.detach();
        assert_eq!(outbox.push(text(b"f")), Pushed::Queued);
    }

    #[tokio::test]
    async fn what_the_socket_does_not_take_goes_back_to_the_owner() {
        let (stream, mut peer) = pair().await;
        let outbox = Outbox::new(100_000, 8);
        outbox.attach(stream);
        outbox.idle();
        // The peer reads nothing: the socket fills up.
        let big = Bytes::from(vec![7u8; 64 * 1024]);
        let mut pushed = 0;
        loop {
            let r = outbox.push(Outgoing {
                frame: big.clone(),
                accepted_at: None,
            });
            pushed += 1;
            if r != Pushed::Deferred {
                break;
            }
            outbox.flush_direct(&mut |_| {});
            assert!(pushed < 1000, "a socket buffer is not that large");
        }
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(outbox.poll_ready(&mut cx).is_ready(), "the owner is woken");
        let mut owner = VecDeque::new();
        outbox.drain_into(&mut owner);
        // Whatever was cut mid-frame is at the front: the bytes on the wire
        // plus those left add up to whole frames.
        let left: usize = owner.iter().map(|o| o.frame.len()).sum();
        drop(owner);
        peer.set_nonblocking(true).unwrap();
        let mut on_wire = 0;
        let mut buf = vec![0; 1 << 20];
        loop {
            match std::io::Read::read(&mut peer, &mut buf) {
                Ok(0) => break,
                Ok(n) => on_wire += n,
                Err(_) => break,
            }
        }
        assert_eq!((on_wire + left) % big.len(), 0);
        assert_eq!(on_wire + left, pushed * big.len());
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
