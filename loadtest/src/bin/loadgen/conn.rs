//! One client connection: connect from a spread loopback source address,
//! then read events (and publish, for publishers) until told to stop.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{interval_at, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::events::{error_code, event_type, stamp_us, write_message};
use crate::stats::{Counters, Latency};

type Ws = WebSocketStream<TcpStream>;

/// State every connection task shares. Timestamps are µs since `base`.
pub struct Shared {
    pub args: Args,
    pub counters: Counters,
    pub latency: Latency,
    /// From a connection's start (its handshake slot taken) to the 101,
    /// and to its `history`: what a connect storm costs each client.
    pub handshakes_us: Latency,
    pub joins_us: Latency,
    pub base: Instant,
    /// Handshakes in flight.
    pub handshakes: Semaphore,
    /// Publishers start on this; the schedule below is set before it fires.
    pub go: CancellationToken,
    pub publish_from: AtomicU64,
    pub measure_from: AtomicU64,
    pub measure_until: AtomicU64,
    /// Everyone stops reading on this.
    pub stop: CancellationToken,
    /// Latest time a client received its `history` / its first presence after it.
    pub last_joined_us: AtomicU64,
    pub last_in_us: AtomicU64,
    pub in_room: AtomicU64,
    /// Fanout with --sync-dir: the publishing start another process chose
    /// (µs since `base`); u64::MAX until then.
    pub start_at: AtomicU64,
}

impl Shared {
    pub fn new(args: Args) -> Result<Self, String> {
        let handshakes = Semaphore::new(args.connect_concurrency);
        let base = match args.clock_base_ms {
            None => Instant::now(),
            // Now, moved back by the time since that Unix instant: every
            // generator given the same instant stamps on the same clock.
            Some(ms) => {
                let at = std::time::UNIX_EPOCH + Duration::from_millis(ms);
                let since = std::time::SystemTime::now()
                    .duration_since(at)
                    .map_err(|_| "--clock-base-ms lies in the future".to_string())?;
                Instant::now()
                    .checked_sub(since)
                    .ok_or("--clock-base-ms lies too far back")?
            }
        };
        Ok(Self {
            args,
            counters: Counters::default(),
            latency: Latency::new()?,
            handshakes_us: Latency::new()?,
            joins_us: Latency::new()?,
            base,
            handshakes,
            go: CancellationToken::new(),
            publish_from: AtomicU64::new(u64::MAX),
            measure_from: AtomicU64::new(u64::MAX),
            measure_until: AtomicU64::new(0),
            stop: CancellationToken::new(),
            last_joined_us: AtomicU64::new(0),
            last_in_us: AtomicU64::new(0),
            in_room: AtomicU64::new(0),
            start_at: AtomicU64::new(u64::MAX),
        })
    }

    pub fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    pub fn instant_at(&self, us: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.base + Duration::from_micros(us))
    }
}

/// What one connection does.
pub struct Role {
    pub index: usize,
    /// The room of the query string.
    pub room: String,
    /// Rooms joined with version 2 `join` events once `room`'s `history`
    /// has arrived; the connection counts as joined when every one of them
    /// has answered with its `history`. Publishers then send round-robin
    /// over `room` and these, naming the room (version 2 `message`).
    pub joins: Vec<String>,
    /// Publishers send every `period`, offset by `phase` so a room's
    /// publishers are spread over the period instead of firing together.
    pub publish: Option<(Duration, Duration)>,
}

/// 127.0.0.2, 127.0.0.3, ... 127.0.0.251, 127.0.1.2, ...
pub fn source_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, (n / 250) as u8, (2 + n % 250) as u8)
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn describe(e: WsError) -> String {
    match e {
        WsError::Http(resp) => format!("upgrade refused: HTTP {}", resp.status().as_u16()),
        other => format!("handshake: {other}"),
    }
}

async fn connect(args: &Args, role: &Role) -> Result<Ws, String> {
    let ip = source_ip(role.index / args.per_ip);
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(ip.into(), 0))
        .map_err(|e| format!("bind {ip}: {e}"))?;
    let (base, server) = match &args.also {
        Some((url, addr)) if role.index % 2 == 1 => (url.as_str(), *addr),
        _ => (args.url.as_str(), args.server),
    };
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("connect {server} from {ip}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let url = format!(
        "{}?token={}&room={}&name=lg{}",
        base,
        query_escape(args.token_for(role.index)),
        query_escape(&role.room),
        role.index
    );
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("request for {url}: {e}"))?;
    let origin = HeaderValue::from_str(&args.origin).map_err(|e| format!("origin: {e}"))?;
    request.headers_mut().insert("Origin", origin);
    // Small buffers: 10k connections must not cost the generator gigabytes.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(describe)?;
    Ok(ws)
}

/// Counts kept by one task and added to the shared counters when it ends.
#[derive(Default)]
struct Local {
    frames: u64,
    delivered: u64,
    late: u64,
    presence: u64,
    rate_limited: u64,
    other_errors: u64,
    joined: bool,
    /// `history` events received (one per room) until joined.
    histories: usize,
    in_room: bool,
    /// When this connection started (µs since `Shared::base`).
    began_us: u64,
}

async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

pub async fn run(shared: Arc<Shared>, role: Role) {
    let c = &shared.counters;
    let mut local = Local::default();
    let ws = {
        let Ok(_permit) = shared.handshakes.acquire().await else {
            return;
        };
        local.began_us = shared.now_us();
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            r = connect(&shared.args, &role) => r,
        }
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(why) => {
            Counters::add(&c.connect_failed, 1);
            c.failure(why);
            return;
        }
    };
    Counters::add(&c.connected, 1);
    let since = shared.now_us().saturating_sub(local.began_us);
    shared.handshakes_us.record(since);
    let late_us = shared.args.late.as_micros() as u64;
    let mut batch: Vec<u64> = Vec::with_capacity(256);
    let mut ticker: Option<Interval> = None;
    let mut waiting_to_publish = role.publish.is_some();
    let mut seq = 0u64;
    let mut text = String::with_capacity(64);
    loop {
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            _ = shared.go.cancelled(), if waiting_to_publish => {
                waiting_to_publish = false;
                if let Some((period, phase)) = role.publish {
                    let start = shared.instant_at(shared.publish_from.load(Relaxed)) + phase;
                    let mut t = interval_at(start, period);
                    // Open loop: a late tick is made up at once, so a busy
                    // generator does not quietly lower the offered load.
                    t.set_missed_tick_behavior(MissedTickBehavior::Burst);
                    ticker = Some(t);
                }
            }
            _ = tick(&mut ticker) => {
                let now = shared.now_us();
                if now >= shared.measure_until.load(Relaxed) {
                    ticker = None;
                    continue;
                }
                seq += 1;
                write_message(&mut text, &role, seq, now);
                if let Err(e) = ws.send(Message::text(text.as_str())).await {
                    c.failure(format!("send: {e}"));
                    Counters::add(&c.closed_early, 1);
                    break;
                }
                Counters::add(&c.sent, 1);
                if now >= shared.measure_from.load(Relaxed) {
                    Counters::add(&c.sent_measured, 1);
                }
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(0, |f| u16::from(f.code));
                        c.failure(format!("closed by server: {code}"));
                        Counters::add(&c.closed_early, 1);
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        c.failure(format!("read: {e}"));
                        Counters::add(&c.closed_early, 1);
                        break;
                    }
                    None => {
                        c.failure("closed by server without close frame".into());
                        Counters::add(&c.closed_early, 1);
                        break;
                    }
                };
                local.frames += 1;
                let join_now = on_event(&shared, &role, &text, &mut local, &mut batch, late_us);
                if join_now {
                    if let Err(e) = send_joins(&mut ws, &role).await {
                        c.failure(format!("send join: {e}"));
                        Counters::add(&c.closed_early, 1);
                        break;
                    }
                }
            }
        }
    }
    shared.latency.record_batch(&mut batch);
    Counters::add(&c.received_frames, local.frames);
    Counters::add(&c.delivered_measured, local.delivered);
    Counters::add(&c.delivered_late, local.late);
    Counters::add(&c.presence, local.presence);
    Counters::add(&c.rate_limited, local.rate_limited);
    Counters::add(&c.other_errors, local.other_errors);
    // Best effort: a close frame, but never wait long for the server.
    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
}

/// One `join` per extra room, all at once (they fit the per-connection
/// burst: 20 by default, at most 15 joins).
async fn send_joins(ws: &mut Ws, role: &Role) -> Result<(), WsError> {
    for room in &role.joins {
        let join = format!(r#"{{"type":"join","room":"{room}"}}"#);
        ws.feed(Message::text(join)).await?;
    }
    ws.flush().await
}

/// Counts one event; true when the connection should send its `join`s now
/// (the first `history`, of the query string's room, has just arrived).
fn on_event(
    shared: &Shared,
    role: &Role,
    text: &str,
    local: &mut Local,
    batch: &mut Vec<u64>,
    late_us: u64,
) -> bool {
    match event_type(text) {
        "message" => {
            let Some(sent) = stamp_us(text) else {
                return false;
            };
            let from = shared.measure_from.load(Relaxed);
            if sent < from || sent >= shared.measure_until.load(Relaxed) {
                return false;
            }
            let latency = shared.now_us().saturating_sub(sent);
            if latency <= late_us {
                local.delivered += 1;
            } else {
                local.late += 1;
            }
            batch.push(latency);
            if batch.len() == batch.capacity() {
                shared.latency.record_batch(batch);
            }
        }
        "presence" => {
            local.presence += 1;
            if local.joined && !local.in_room {
                local.in_room = true;
                shared.in_room.fetch_add(1, Relaxed);
                shared.last_in_us.fetch_max(shared.now_us(), Relaxed);
            }
        }
        "history" if !local.joined => {
            local.histories += 1;
            if local.histories <= role.joins.len() {
                return local.histories == 1;
            }
            local.joined = true;
            let since = shared.now_us().saturating_sub(local.began_us);
            shared.joins_us.record(since);
            Counters::add(&shared.counters.joined, 1);
            shared.last_joined_us.fetch_max(shared.now_us(), Relaxed);
        }
        "error" => {
            let code = error_code(text);
            if code == "rate_limited" {
                local.rate_limited += 1;
            } else {
                local.other_errors += 1;
                shared.counters.failure(format!("error event: {code}"));
            }
        }
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_skip_network_and_broadcast() {
        assert_eq!(source_ip(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_ip(249), Ipv4Addr::new(127, 0, 0, 251));
        assert_eq!(source_ip(250), Ipv4Addr::new(127, 0, 1, 2));
    }
}
