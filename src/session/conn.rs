//! The connection's loop: one poll over the socket, the outbox and the
//! heartbeat; reads decoded into client messages, queued frames written in
//! one vectored write; and the close handshake.
//!
//! Reads and writes are readiness based (`readable`/`try_read`,
//! `writable`/`try_write_vectored`), so every branch of the loop is
//! cancel-safe and nothing is buffered for an idle connection: a partial
//! frame is the only thing ever kept between reads.
//!
//! Fan-out writes straight to the socket while this task has nothing to
//! write; the task takes the outbox's claim before it writes anything of
//! its own and gives it back once all it took is out (see
//! [`crate::fanout::outbox`]).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;

use super::message::{self, Outcome};
use crate::app::App;
use crate::fanout::rooms::Member;
use crate::limits::{ConnectionLimiter, IpKey};
use crate::protocol::close::CloseCode;
use crate::protocol::event;
use crate::ws::frame::{self, Opcode};
use crate::ws::inbound::{Decoded, Decoder, Inbound};
use crate::ws::transport::{Outgoing, Received, Transport, READ_CHUNK};

/// What woke the session.
#[derive(Default)]
struct Events {
    outbox: bool,
    read: Option<bool>,
    write: Option<bool>,
    heartbeat: bool,
}

/// The socket and what is in flight on it.
pub(super) struct Conn {
    io: Transport,
    member: Arc<Member>,
    /// This task holds the outbox's claim: only it writes to the socket.
    claimed: bool,
    decoder: Decoder,
    /// Frames being written; the first may be partly written.
    out: VecDeque<Outgoing>,
    written: usize,
    read_closed: bool,
}

enum Read {
    Units(Vec<Inbound>),
    /// The connection broke a rule; close with this code.
    Violation(CloseCode, Vec<Inbound>),
    Eof,
    Nothing,
}

impl Conn {
    pub(super) fn new(
        member: &Arc<Member>,
        stream: TcpStream,
        tls: Option<Box<rustls::ServerConnection>>,
        leftover: Bytes,
        limit: usize,
        direct_writes: Option<usize>,
    ) -> Conn {
        let stream = Arc::new(stream);
        // Fan-out can write plain TCP itself; TLS records only come from here.
        if let (Some(send_buffer), None) = (direct_writes, &tls) {
            member.outbox.attach(stream.clone(), send_buffer);
        }
        let (io, early) = Transport::new(stream, tls);
        let mut partial = leftover.to_vec();
        partial.extend_from_slice(&early);
        Conn {
            io,
            member: member.clone(),
            claimed: false,
            decoder: Decoder::new(limit, partial),
            out: VecDeque::new(),
            written: 0,
            read_closed: false,
        }
    }

    pub(super) fn send(&mut self, frame: Bytes) {
        if !self.claimed {
            // The rest of a frame fan-out began goes out before this.
            self.member.outbox.claim(&mut self.out);
            self.claimed = true;
        }
        self.out.push_back(Outgoing {
            frame,
            accepted_at: None,
            latest: 0,
        });
    }

    pub(super) async fn serve(
        &mut self,
        app: &Arc<App>,
        member: &Arc<Member>,
        limiter: &ConnectionLimiter,
        ip: &IpKey,
    ) -> Option<CloseCode> {
        // The heartbeat comes through the outbox (`heartbeat::run`): no timer here.
        let mut heard_since_ping = true;
        let mut pong_owed: Option<Vec<u8>> = None;

        // Bytes that came with the upgrade request are already here.
        let mut pending = if !self.decoder.has_partial() {
            Read::Nothing
        } else {
            self.parse(&mut [])
        };
        loop {
            let (units, violation) = match std::mem::replace(&mut pending, Read::Nothing) {
                Read::Units(u) => (u, None),
                Read::Violation(code, u) => (u, Some(code)),
                Read::Eof => return None,
                Read::Nothing => (Vec::new(), None),
            };
            for unit in units {
                heard_since_ping = true;
                match unit {
                    Inbound::Text(text) => {
                        // A ping that came first is answered first: what the
                        // message causes may be written straight to the socket.
                        if self.out.is_empty() {
                            if let Some(payload) = pong_owed.take() {
                                self.send(frame::encode(Opcode::Pong, &payload));
                            }
                        }
                        // Boxed, like every rare await here: the future's size is
                        // what an idle connection costs, and it is the largest of
                        // its await states.
                        let max = app.settings.limits.max_text_chars;
                        match Box::pin(message::handle(app, member, limiter, *ip, &text)).await {
                            Outcome::Published { .. } | Outcome::Done => {}
                            Outcome::Refused(code) => {
                                self.send(frame::text(&event::error(None, code, max)))
                            }
                            Outcome::RoomRefused { room, code } => {
                                self.send(frame::text(&event::error(Some(&room), code, max)))
                            }
                            Outcome::Revoked => {
                                return Box::pin(self.close(app, CloseCode::Policy, None)).await
                            }
                            Outcome::Expired => {
                                return Box::pin(self.close(app, CloseCode::TokenExpired, None))
                                    .await
                            }
                            Outcome::Refreshed { expires } => {
                                self.send(frame::text(&event::refreshed(expires)));
                            }
                        }
                    }
                    Inbound::Ping(payload) => pong_owed = Some(payload),
                    Inbound::Pong => app.metrics.pongs.inc(),
                    Inbound::Close(code) => {
                        // Echo the client's code: a normal close handshake.
                        member.outbox.detach();
                        self.send(match code {
                            Some(c) => frame::close_raw(c, b""),
                            None => frame::encode(Opcode::Close, b""),
                        });
                        self.read_closed = true;
                        let _ =
                            Box::pin(self.flush_all(app, app.settings.session.close_timeout)).await;
                        return Some(CloseCode::Normal);
                    }
                }
            }
            if let Some(code) = violation {
                return Box::pin(self.close(app, code, None)).await;
            }
            // A pong answers only the latest ping, and is queued only once
            // everything before it is written: a peer that floods pings but
            // never reads gets one pong per completed write, and its pings
            // cannot grow our queue (they used to add one pong per read).
            if self.out.is_empty() {
                if let Some(payload) = pong_owed.take() {
                    self.send(frame::encode(Opcode::Pong, &payload));
                }
            }
            let close = if self.out.is_empty() {
                // Frames are never copied: the queue's buffer becomes `out`
                // and the outbox gets `out`'s (empty, since `flush` gives
                // back the buffers of a connection that wrote everything).
                let close = member.outbox.drain_into(&mut self.out);
                if !self.out.is_empty() {
                    self.claimed = true;
                    app.metrics.queue_depth.observe(self.out.len() as f64);
                }
                close
            } else {
                member.outbox.close_requested()
            };
            if let Some(code) = close {
                if code == CloseCode::TryAgainLater {
                    self.discard_unstarted();
                }
                // A disconnect through the server API may carry its own reason.
                let reason = match code {
                    CloseCode::Disconnected => app.connections.take_close_reason(member.id),
                    _ => None,
                };
                return Box::pin(self.close(app, code, reason.as_deref())).await;
            }
            if self.io.has_output(&self.out) && self.flush(app).is_err() {
                return None;
            }

            // One poll over every source instead of select!: readiness lives
            // in the socket's and the outbox's own waker slots, so waiting
            // holds no futures and an idle connection stays small.
            let want_write = self.io.has_output(&self.out);
            let (read_closed, stream) = (self.read_closed, &self.io.stream);
            let ev = std::future::poll_fn(|cx| {
                let mut ev = Events::default();
                if let Poll::Ready(heartbeat) = member.outbox.poll_ready(cx) {
                    ev.outbox = true;
                    ev.heartbeat = heartbeat;
                }
                if !read_closed {
                    if let Poll::Ready(r) = stream.poll_read_ready(cx) {
                        ev.read = Some(r.is_ok());
                    }
                }
                if want_write {
                    if let Poll::Ready(r) = stream.poll_write_ready(cx) {
                        ev.write = Some(r.is_ok());
                    }
                }
                let any = ev.outbox || ev.read.is_some() || ev.write.is_some() || ev.heartbeat;
                if any {
                    Poll::Ready(ev)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if let Some(ok) = ev.write {
                if !ok || self.flush(app).is_err() {
                    return None;
                }
            }
            if let Some(ok) = ev.read {
                pending = if ok { self.read() } else { Read::Eof };
            }
            if ev.heartbeat {
                if !heard_since_ping {
                    app.metrics.heartbeat_timeouts.inc();
                    return None;
                }
                heard_since_ping = false;
                self.send(frame::encode(Opcode::Ping, b""));
                app.metrics.pings.inc();
            }
        }
    }

    fn read(&mut self) -> Read {
        let mut chunk = [0u8; READ_CHUNK];
        match self.io.read(&mut chunk) {
            Received::InChunk(n) => self.parse(&mut chunk[..n]),
            Received::Owned(mut plain) => self.parse(&mut plain),
            Received::Nothing => Read::Nothing,
            Received::Eof => Read::Eof,
        }
    }

    fn parse(&mut self, fresh: &mut [u8]) -> Read {
        match self.decoder.feed(fresh) {
            Decoded {
                units,
                violation: Some(code),
            } => Read::Violation(code, units),
            Decoded { units, .. } => Read::Units(units),
        }
    }

    /// Writes what the socket takes now. Ok(true) when everything is out.
    fn flush(&mut self, app: &App) -> io::Result<bool> {
        let (mut delivered, now, metrics) = (0u64, Instant::now(), &app.metrics);
        let result = self
            .io
            .write(&mut self.out, &mut self.written, &mut |item| {
                if let Some(at) = item.accepted_at {
                    delivered += 1;
                    metrics
                        .fanout_latency
                        .observe(now.duration_since(at).as_secs_f64());
                }
            });
        if delivered > 0 {
            metrics.delivered.inc_by(delivered);
        }
        if matches!(result, Ok(true)) {
            // Most connections are idle most of the time: once everything is
            // written, hold no buffer. One allocation per drained batch (the
            // outbox's, on its next push) is noise next to the write itself.
            self.out = VecDeque::new();
            if std::mem::take(&mut self.claimed) {
                self.member.outbox.release();
            }
        }
        result
    }

    /// Writes everything queued, waiting for the socket up to `limit`.
    async fn flush_all(&mut self, app: &App, limit: Duration) -> io::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.flush(app)? {
            tokio::time::timeout_at(deadline, self.io.stream.writable())
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        }
        Ok(())
    }

    /// Drops queued frames not yet started (a partly written frame must finish).
    fn discard_unstarted(&mut self) {
        let keep = usize::from(self.written > 0);
        self.out.truncate(keep);
    }

    /// Sends our close frame after what is queued, then waits briefly for
    /// the client's close frame before letting the socket go. Our side is
    /// shut down first, so unread client bytes cannot turn our close into a
    /// reset that the client sees before the close frame.
    pub(super) async fn close(
        &mut self,
        app: &App,
        code: CloseCode,
        reason: Option<&str>,
    ) -> Option<CloseCode> {
        if code == CloseCode::Policy {
            app.metrics.revocation_closes.inc();
        }
        // From here only this task writes: the close frame ends the stream.
        self.member.outbox.detach();
        self.send(match reason {
            Some(reason) => frame::close_raw(code.code(), reason.as_bytes()),
            None => frame::close(code),
        });
        let limit = app.settings.session.close_timeout;
        if self.flush_all(app, limit).await.is_err() {
            return Some(code);
        }
        self.io.close_notify();
        let _ = self.flush_all(app, limit).await;
        // Detached, the outbox no longer holds the socket: it is ours alone.
        if let Some(stream) = Arc::get_mut(&mut self.io.stream) {
            let _ = tokio::io::AsyncWriteExt::shutdown(stream).await;
        }
        let deadline = tokio::time::Instant::now() + limit;
        while !self.read_closed {
            match tokio::time::timeout_at(deadline, self.io.stream.readable()).await {
                Ok(Ok(())) => match self.read() {
                    Read::Nothing => {}
                    Read::Units(units) if !units.iter().any(|u| matches!(u, Inbound::Close(_))) => {
                    }
                    _ => break,
                },
                _ => break,
            }
        }
        Some(code)
    }
}

impl Drop for Conn {
    /// Fan-out stops writing, and the socket closes with this.
    fn drop(&mut self) {
        self.member.outbox.detach();
    }
}
