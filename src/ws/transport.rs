//! The socket under a session: plain TCP, or TLS with rustls driven directly
//! (no async wrapper), so both keep the session's cancel-safe readiness loop.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read as _, Write as _};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use rustls::ServerConnection;
use tokio::net::TcpStream;

/// One encoded frame waiting to be written.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The complete WebSocket frame, shared by every recipient.
    pub frame: Bytes,
    /// When the message was accepted, for the fan-out latency histogram;
    /// `None` for frames that are not chat messages.
    pub accepted_at: Option<Instant>,
    /// Nonzero for the frames of a room with `delivery = "latest"` (one key
    /// per room): in a full queue a newer one replaces the oldest of them.
    pub latest: u64,
}

/// Frames written in one vectored write at most.
pub const WRITE_BATCH: usize = 64;
/// Bytes read per readiness event.
pub const READ_CHUNK: usize = 4096;

/// What one read produced.
pub enum Received {
    /// `n` plaintext bytes at the start of the caller's chunk.
    InChunk(usize),
    /// Decrypted bytes (TLS).
    Owned(Vec<u8>),
    /// Nothing yet.
    Nothing,
    /// The peer closed, or the connection failed.
    Eof,
}

/// A connection's socket.
pub struct Transport {
    /// Shared with the connection's outbox, which writes to it directly.
    pub stream: Arc<TcpStream>,
    tls: Option<Box<ServerConnection>>,
}

/// `std::io::Write` over a non-blocking tokio socket, for rustls.
struct SocketWriter<'a>(&'a TcpStream);

impl io::Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport {
    /// Wraps a socket; with TLS, also returns plaintext rustls already holds.
    pub fn new(stream: Arc<TcpStream>, tls: Option<Box<ServerConnection>>) -> (Transport, Vec<u8>) {
        let mut t = Transport { stream, tls };
        let mut early = Vec::new();
        if let Some(tls) = t.tls.as_mut() {
            let _ = tls.reader().read_to_end(&mut early);
        }
        (t, early)
    }

    /// Reads what the socket has without waiting.
    pub fn read(&mut self, chunk: &mut [u8; READ_CHUNK]) -> Received {
        let n = match self.stream.try_read(chunk) {
            Ok(0) => return Received::Eof,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Received::Nothing,
            Err(_) => return Received::Eof,
        };
        let Some(tls) = self.tls.as_mut() else {
            return Received::InChunk(n);
        };
        let mut input = &chunk[..n];
        while !input.is_empty() {
            match tls.read_tls(&mut input) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return Received::Eof,
            }
            if tls.process_new_packets().is_err() {
                return Received::Eof;
            }
        }
        let mut plain = Vec::new();
        match tls.reader().read_to_end(&mut plain) {
            // The peer sent close_notify: deliver what came before it, then end.
            Ok(_) if plain.is_empty() => Received::Eof,
            Ok(_) => Received::Owned(plain),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Received::Owned(plain),
            Err(_) => Received::Eof,
        }
    }

    /// Whether bytes are waiting to go out (queued frames or TLS records).
    pub fn has_output(&self, out: &VecDeque<Outgoing>) -> bool {
        !out.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes queued frames as far as the socket takes them, calling `done`
    /// for each frame handed off whole. Ok(true) when nothing is left.
    pub fn write(
        &mut self,
        out: &mut VecDeque<Outgoing>,
        written: &mut usize,
        done: &mut dyn FnMut(&Outgoing),
    ) -> io::Result<bool> {
        match self.tls.as_mut() {
            None => write_plain(&self.stream, out, written, done),
            Some(tls) => write_tls(&self.stream, tls, out, written, done),
        }
    }

    /// Starts our side's close: TLS close_notify, to be flushed by `write`.
    pub fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
        }
    }
}

fn advance(
    out: &mut VecDeque<Outgoing>,
    written: &mut usize,
    mut n: usize,
    done: &mut dyn FnMut(&Outgoing),
) {
    while n > 0 {
        let Some(front) = out.front() else { return };
        let left = front.frame.len() - *written;
        if n < left {
            *written += n;
            return;
        }
        n -= left;
        *written = 0;
        if let Some(item) = out.pop_front() {
            done(&item);
        }
    }
}

fn write_plain(
    stream: &TcpStream,
    out: &mut VecDeque<Outgoing>,
    written: &mut usize,
    done: &mut dyn FnMut(&Outgoing),
) -> io::Result<bool> {
    loop {
        if out.is_empty() {
            return Ok(true);
        }
        let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
        let mut n = 0;
        for (i, item) in out.iter().take(WRITE_BATCH).enumerate() {
            slices[i] = IoSlice::new(&item.frame[if i == 0 { *written } else { 0 }..]);
            n = i + 1;
        }
        match stream.try_write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(wrote) => advance(out, written, wrote, done),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

fn write_tls(
    stream: &TcpStream,
    tls: &mut ServerConnection,
    out: &mut VecDeque<Outgoing>,
    written: &mut usize,
    done: &mut dyn FnMut(&Outgoing),
) -> io::Result<bool> {
    loop {
        // Hand frames to rustls while its buffer has room ...
        while let Some(front) = out.front() {
            let n = tls.writer().write(&front.frame[*written..])?;
            if n == 0 {
                break;
            }
            advance(out, written, n, done);
        }
        // ... and its records to the socket.
        if !tls.wants_write() {
            return Ok(out.is_empty());
        }
        match tls.write_tls(&mut SocketWriter(stream)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}
