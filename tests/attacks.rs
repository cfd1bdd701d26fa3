//! Resource attacks over real sockets: slowloris on the upgrade and on
//! frames, connection floods from one IP, clients that never read, ping and
//! pong floods, and many connections at the rate limit. In every test a
//! well-behaved client in the attacked room keeps sending and receiving,
//! each round trip under a second.

mod common;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use common::{tcp_from, Client, Process, Raw, TestServer, ORIGIN, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The attacks run one at a time: each measures latency and memory, which
/// another attack in the same process would distort.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The longest a bystander's message may take to come back.
const MAX_ROUND_TRIP: Duration = Duration::from_secs(1);

/// One message from `c` and its echo; returns how long it took.
async fn round_trip(c: &mut Client, text: &str) -> Duration {
    let start = Instant::now();
    c.say(text).await;
    tokio::time::timeout(MAX_ROUND_TRIP, async {
        loop {
            if c.next_message().await["text"] == text {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("`{text}` not back within {MAX_ROUND_TRIP:?}"));
    start.elapsed()
}

/// Keeps reading `c` for `pause`, as a browser does: pings get their pongs.
async fn idle(c: &mut Client, pause: Duration) {
    let _ = tokio::time::timeout(pause, async {
        while let Some(Ok(_)) = c.ws.next().await {}
    })
    .await;
}

/// Runs `attack` in its own task while `c` chats every 500 ms (the
/// per-connection refill rate, so the bystander itself is never limited);
/// asserts every round trip stays under a second and returns the attack's
/// result and the slowest round trip.
async fn chat_during<T: Send + 'static>(
    c: &mut Client,
    attack: impl Future<Output = T> + Send + 'static,
) -> (T, Duration) {
    let task = tokio::spawn(attack);
    let mut worst = Duration::ZERO;
    let mut n = 0;
    while !task.is_finished() {
        worst = worst.max(round_trip(c, &format!("bystander {n}")).await);
        n += 1;
        idle(c, Duration::from_millis(500)).await;
    }
    worst = worst.max(round_trip(c, "bystander after").await);
    (task.await.expect("attack task"), worst)
}

/// An upgrade request with the test token, unless `query` brings its own.
fn upgrade_request(query: &str) -> String {
    let token = if query.starts_with("token=") {
        String::new()
    } else {
        format!("token={TOKEN}&")
    };
    format!(
        "GET /chat?{token}{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n"
    )
}

/// Sends an upgrade request from `from`; returns the response head and the
/// stream (still open: a 101 keeps its connection).
async fn upgrade_from(from: Ipv4Addr, addr: SocketAddr, query: &str) -> (String, TcpStream) {
    let mut s = tcp_from(from, addr).await;
    s.write_all(upgrade_request(query).as_bytes())
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(common::WAIT, s.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    (String::from_utf8_lossy(&head).into_owned(), s)
}

fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The Retry-After seconds of a response head, if it has a valid one.
fn retry_after_of(head: &str) -> Option<u64> {
    head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after:")
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Waits until the peer closes `s` (EOF or reset), discarding what it sends.
async fn until_closed(s: &mut TcpStream, limit: Duration) -> Result<Duration, &'static str> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), s.read(&mut buf)).await {
            Err(_) => return Err("still open"),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// This process's resident memory in KiB.
fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn upgrade_headers_dribbled_slower_than_the_header_read_timeout_are_cut() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = TestServer::start(&[("CHAT__SERVER__HEADER_READ_TIMEOUT", "500ms")]).await;
    let (mut good, _) = s.join("room=slow&name=good").await;
    let addr = s.addr;
    let (cut, _) = chat_during(&mut good, async move {
        let mut dribbler = TcpStream::connect(addr).await.expect("connect");
        let request = upgrade_request("room=slow");
        let dribble = async {
            for b in request.as_bytes() {
                if dribbler.write_all(&[*b]).await.is_err() {
                    return;
                }
                // The attack itself: one byte every 100 ms.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        // 200-odd bytes at 10 per second would take 20 s; the server cuts at 0.5 s.
        let _ = tokio::time::timeout(Duration::from_secs(3), dribble).await;
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        silent
            .write_all(b"GET /chat HTTP/1.1\r\n")
            .await
            .expect("write");
        (
            until_closed(&mut dribbler, Duration::from_secs(3)).await,
            until_closed(&mut silent, Duration::from_secs(3)).await,
        )
    })
    .await;
    let (dribbler, silent) = cut;
    assert!(dribbler.is_ok(), "dribbled request never cut");
    let silent = silent.expect("a request stalled mid-headers is cut");
    assert!(silent < Duration::from_secs(2), "cut after {silent:?}");
}

#[tokio::test]
async fn a_partial_frame_held_open_is_cut_within_two_heartbeats() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = TestServer::start(&[("CHAT__SESSION__HEARTBEAT_INTERVAL", "400ms")]).await;
    let (mut good, _) = s.join("room=slow&name=good").await;
    let addr = s.addr;
    let (held, _) = chat_during(&mut good, async move {
        let mut raw = Raw::connect(addr, "room=slow&name=holder").await;
        // The header of a 2000-byte text frame and ten bytes of its body, then nothing.
        let f = ws_chat::ws::frame::client_frame(true, 1, &[b'a'; 2000], [1, 2, 3, 4]);
        raw.write(&f[..18]).await;
        until_closed(&mut raw.stream, Duration::from_secs(3)).await
    })
    .await;
    let held = held.expect("a partial frame is cut by the heartbeat");
    assert!(held <= Duration::from_secs(2), "cut after {held:?}");
    assert!(s.metric("wschat_heartbeat_timeouts_total").await >= 1.0);
}

#[tokio::test]
async fn one_ip_opening_connections_as_fast_as_it_can_gets_429_with_retry_after_while_other_ips_connect(
) {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = TestServer::start(&[
        ("CHAT__LIMITS__IP_CONNECT_BURST", "10"),
        ("CHAT__LIMITS__IP_CONNECT_REFILL", "1s"),
        ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "5"),
    ])
    .await;
    let (mut good, _) = s.join("room=flood&name=good").await;
    let addr = s.addr;
    let (outcome, _) = chat_during(&mut good, async move {
        let attacker = Ipv4Addr::new(127, 0, 0, 2);
        let mut open = Vec::new();
        let mut statuses = Vec::new();
        let mut retry_after = Vec::new();
        for _ in 0..60 {
            let (head, stream) = upgrade_from(attacker, addr, "room=flood").await;
            let status = status_of(&head);
            if status == 429 {
                retry_after.push(retry_after_of(&head));
            }
            if status == 101 {
                open.push(stream);
            }
            statuses.push(status);
        }
        // Other addresses are not affected.
        let other = Ipv4Addr::new(127, 0, 0, 3);
        let (other_head, _keep) = upgrade_from(other, addr, "room=flood").await;
        (statuses, retry_after, status_of(&other_head), open.len())
    })
    .await;
    let (statuses, retry_after, other, open) = outcome;
    assert_eq!(open, 5, "the per-IP cap admits five: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 101 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 55);
    for value in &retry_after {
        let secs = value.expect("Retry-After");
        assert!((1..=5).contains(&secs), "Retry-After {secs}");
    }
    assert_eq!(other, 101, "127.0.0.3 still connects");
    assert!(
        s.metric("wschat_upgrade_rejections_total{reason=\"ip_cap\"}")
            .await
            >= 1.0
    );
    assert!(
        s.metric("wschat_upgrade_rejections_total{reason=\"ip_rate\"}")
            .await
            >= 1.0
    );
}

/// Online token guessing: after its failure budget an address gets 429
/// without its token being looked at (the right token too), other addresses
/// are unaffected, and the lock-out ends when one attempt refills.
#[tokio::test]
async fn guessing_tokens_from_one_ip_is_locked_out_with_429_while_other_ips_connect() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = TestServer::start(&[
        ("CHAT__LIMITS__IP_AUTH_FAILURE_BURST", "5"),
        ("CHAT__LIMITS__IP_AUTH_FAILURE_REFILL", "2s"),
    ])
    .await;
    let (mut good, _) = s.join("room=guess&name=good").await;
    let addr = s.addr;
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let (outcome, _) = chat_during(&mut good, async move {
        let mut answers = Vec::new();
        for i in 0..30 {
            let (head, _) =
                upgrade_from(attacker, addr, &format!("token=guess-{i}&room=guess")).await;
            answers.push((status_of(&head), retry_after_of(&head)));
        }
        let (real, _) = upgrade_from(attacker, addr, "room=guess&name=real").await;
        let (other, _keep) = upgrade_from(Ipv4Addr::new(127, 0, 0, 3), addr, "room=guess").await;
        (answers, status_of(&real), status_of(&other))
    })
    .await;
    let (answers, real, other) = outcome;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    // Five failures fill the budget; the sixth is checked and locks the address.
    assert_eq!(statuses[..6], [401; 6], "{statuses:?}");
    assert!(
        statuses[6..].iter().all(|s| *s == 429),
        "locked out after the budget: {statuses:?}"
    );
    for (status, retry_after) in &answers {
        if *status == 429 {
            assert!(
                matches!(retry_after, Some(1..=2)),
                "Retry-After {retry_after:?}"
            );
        }
    }
    assert_eq!(
        real, 429,
        "the right token is not looked at while locked out"
    );
    assert_eq!(other, 101, "127.0.0.3 is not affected");
    assert!(
        s.metric("wschat_upgrade_rejections_total{reason=\"auth_failures\"}")
            .await
            >= 25.0
    );
    // Once one attempt has refilled, the address is heard again. A sleep, not
    // a poll: that the lock-out is over by then is the check, and a poll
    // would accept a longer one.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (head, _keep) = upgrade_from(attacker, addr, "room=guess&name=real").await;
    assert_eq!(status_of(&head), 101, "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_are_closed_as_slow_consumers_and_memory_stays_bounded() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = TestServer::start(&[
        ("CHAT__LIMITS__MESSAGE_BURST", "100000"),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "100000"),
        ("CHAT__LIMITS__IP_CONNECT_BURST", "1000"),
        ("CHAT__SESSION__CLOSE_TIMEOUT", "300ms"),
    ])
    .await;
    // The bystander chats in another room: in the flooded one it would have
    // to decode 2,000 messages a second itself, and on a loaded machine a
    // debug-built client that falls behind is (rightly) closed with 1013 too.
    let (mut good, _) = s.join("room=calm&name=good").await;
    const SLEEPERS: usize = 40;
    let mut sleepers = Vec::new();
    for i in 0..SLEEPERS {
        // A small receive window, so their buffers fill after a few messages.
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let mut stream = socket.connect(s.addr).await.expect("connect");
        stream
            .write_all(upgrade_request(&format!("room=slow&name=sleeper{i}")).as_bytes())
            .await
            .expect("write");
        sleepers.push(stream);
    }
    let rss_before = rss_kib("self");
    let addr = s.addr;
    // One flooder at full speed, reading its own echoes so that it keeps up.
    let (sent, _) = chat_during(&mut good, async move {
        let raw = Raw::connect(addr, "room=slow&name=flooder").await;
        let (mut rd, mut wr) = raw.stream.into_split();
        let drain = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        // 500 three-byte characters: the largest message, about 1.6 KB on the wire.
        let text = "€".repeat(500);
        let msg = format!(r#"{{"type":"message","text":"{text}"}}"#);
        let frame = ws_chat::ws::frame::client_frame(true, 1, msg.as_bytes(), [9, 8, 7, 6]);
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && sent < 6000 {
            wr.write_all(&frame.repeat(20)).await.expect("flood");
            sent += 20;
            // Pacing: 2,000 messages a second, not a wait for anything.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drain.abort();
        sent
    })
    .await;
    let growth = rss_kib("self").saturating_sub(rss_before);
    // 40 queues of at most 256 shared frames plus the flood in flight.
    assert!(
        growth < 64 * 1024,
        "RSS grew {growth} KiB for {sent} messages"
    );
    common::eventually(
        &format!(
            "all {SLEEPERS} sleepers closed as slow consumers after {sent} messages \
             (seen: closes, queue_full drops)"
        ),
        common::WAIT,
        async || {
            let closed = s.metric("wschat_slow_consumer_closes_total").await;
            if closed >= SLEEPERS as f64 {
                return Ok(());
            }
            Err((
                closed,
                s.metric("wschat_drops_total{reason=\"queue_full\"}").await,
            ))
        },
    )
    .await;
    // Each sleeper's socket is let go: reading it to the end terminates.
    for mut stream in sleepers {
        until_closed(&mut stream, Duration::from_secs(5))
            .await
            .expect("sleeper closed");
    }
    round_trip(&mut good, "after the sleepers").await;
}

/// Writes `frames` copies of a masked control frame as fast as the socket
/// takes them, never reading; returns how many were written.
async fn flood(wr: &mut (impl AsyncWriteExt + Unpin), opcode: u8, frames: usize) -> usize {
    let one = ws_chat::ws::frame::client_frame(true, opcode, &[0x5A; 125], [3, 1, 4, 1]);
    let batch = one.repeat(32);
    let mut sent = 0;
    while sent < frames {
        if tokio::time::timeout(Duration::from_secs(2), wr.write_all(&batch))
            .await
            .is_err()
        {
            break; // the server stopped reading us: that is back-pressure, not a failure
        }
        sent += 32;
    }
    sent
}

/// Counts frames by opcode that arrive on `raw` until it is quiet for 300 ms.
async fn count_frames(stream: &mut TcpStream) -> (usize, usize) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), stream.read(&mut chunk)).await
    {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut at = match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) if buf.starts_with(b"HTTP/") => end + 4,
        _ => 0,
    };
    let (mut pongs, mut others) = (0, 0);
    while at + 2 <= buf.len() {
        let (len, head) = match buf[at + 1] & 0x7F {
            126 if at + 4 <= buf.len() => {
                (u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize, 4)
            }
            126 | 127 => break,
            n => (n as usize, 2),
        };
        if buf[at] & 0x0F == 0xA {
            pongs += 1;
        } else {
            others += 1;
        }
        at += head + len;
    }
    (pongs, others)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_that_never_reads_gets_few_pongs_and_others_keep_chatting() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = TestServer::start(&[]).await;
    let (mut good, _) = s.join("room=ping&name=good").await;
    let addr = s.addr;
    let ((sent, pongs), worst) = chat_during(&mut good, async move {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let mut stream = socket.connect(addr).await.expect("connect");
        stream
            .write_all(upgrade_request("room=ping&name=pinger").as_bytes())
            .await
            .expect("write");
        // 64,000 pings of 125 bytes: 8 MiB, about 2,000 reads of 4 KiB.
        let sent = flood(&mut stream, 9, 64_000).await;
        let (pongs, _) = count_frames(&mut stream).await;
        (sent, pongs)
    })
    .await;
    // Never one pong per ping: the server answers only the latest ping of
    // each read (4 KiB, about 31 of these pings) and queues a pong only when
    // its previous writes are done, so the pinger's own unread pongs cannot
    // grow the server's queue.
    assert!(sent >= 32_000, "the flood was throttled early: {sent}");
    let reads = sent * 131 / 4096;
    assert!(
        pongs <= reads + 64,
        "{pongs} pongs for {sent} pings ({reads} reads)"
    );
    assert!(worst < MAX_ROUND_TRIP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pong_flood_is_absorbed_silently_and_others_keep_chatting() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = TestServer::start(&[]).await;
    let (mut good, _) = s.join("room=pong&name=good").await;
    let addr = s.addr;
    let ((sent, replies), worst) = chat_during(&mut good, async move {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = upgrade_request("room=pong&name=ponger");
        stream.write_all(request.as_bytes()).await.expect("write");
        let sent = flood(&mut stream, 0xA, 64_000).await;
        (sent, count_frames(&mut stream).await)
    })
    .await;
    assert_eq!(sent, 64_000);
    let (pongs, _chat) = replies;
    assert_eq!(pongs, 0, "unsolicited pongs are not answered");
    assert!(s.metric("wschat_heartbeat_pongs_total").await >= 64_000.0);
    assert!(worst < MAX_ROUND_TRIP);
}

/// `n` raw clients, ten per loopback address and ten per room, each sending
/// one message every 500 ms (exactly the per-connection refill) and reading
/// whatever arrives, for `secs` seconds, against the real binary. Returns
/// the server's RSS growth per connection in KiB.
async fn at_the_rate_limit(n: usize, secs: u64) -> u64 {
    let p = Process::start(
        &[
            ("CHAT__LIMITS__IP_CONNECT_BURST", "100"),
            ("CHAT__TELEMETRY__LOG_LEVEL", "warn"),
        ],
        &[],
    );
    let pid = p.child.id().to_string();
    let addr = p.addr();
    let mut good = common::connect(&p.url("room=r0&name=good"), Some(ORIGIN))
        .await
        .expect("bystander joins");
    good.next_of("history").await;
    let rss_before = rss_kib(&pid);
    let (peak, worst) = chat_during(&mut good, async move {
        let mut clients = Vec::with_capacity(n);
        // At most 200 handshakes in flight: more overflows the listen backlog.
        let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(200));
        for i in 0..n {
            let handshakes = handshakes.clone();
            let host = i / 10;
            let ip = Ipv4Addr::new(127, 1, (host / 250) as u8, (host % 250 + 2) as u8);
            let query = format!("room=r{}&name=c{i}", i % (n / 10));
            clients.push(tokio::spawn(async move {
                let _turn = handshakes.acquire().await.expect("semaphore");
                let (head, stream) = upgrade_from(ip, addr, &query).await;
                assert_eq!(status_of(&head), 101, "client {i}: {head}");
                stream
            }));
        }
        let mut streams = Vec::with_capacity(n);
        for c in clients {
            streams.push(c.await.expect("connect task"));
        }
        let until = Instant::now() + Duration::from_secs(secs);
        let senders: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                tokio::spawn(async move {
                    let msg = format!(r#"{{"type":"message","text":"hello from {i}"}}"#);
                    let frame = ws_chat::ws::frame::client_frame(true, 1, msg.as_bytes(), [1, 2, 3, 4]);
                    // Spread the first sends over one refill interval.
                    let mut next = Instant::now() + Duration::from_millis((i % 500) as u64);
                    let mut buf = vec![0u8; 16384];
                    while Instant::now() < until {
                        // Sends are paced to the rate limit: the sleep is the schedule.
                        tokio::select! {
                            r = s.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) { return false },
                            () = tokio::time::sleep_until(next.into()) => {
                                if s.write_all(&frame).await.is_err() {
                                    return false;
                                }
                                next += Duration::from_millis(500);
                            }
                        }
                    }
                    true
                })
            })
            .collect();
        let mut peak = 0;
        while !senders.iter().all(|t| t.is_finished()) {
            peak = peak.max(rss_kib(&pid));
            // Sampling RSS for its peak while the senders run; no condition to poll.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for t in senders {
            assert!(t.await.expect("sender"), "a client was cut");
        }
        peak
    })
    .await;
    assert!(worst < MAX_ROUND_TRIP);
    let growth = peak.saturating_sub(rss_before) / n as u64;
    eprintln!(
        "{n} connections at the rate limit for {secs} s: server RSS {rss_before} -> {peak} KiB, \
         {growth} KiB per connection, bystander worst round trip {worst:?}"
    );
    growth
}

/// 1,000 connections is what a 2-core CI machine sets up and serves (in a
/// debug build) in a few seconds. Measured here: docs/security.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_sending_at_the_rate_limit_keep_server_memory_bounded() {
    let _one = ONE_AT_A_TIME.lock().await;
    // 1,000 fit a 2-core CI run; the full 10,000 by hand:
    // WSCHAT_ATTACK_CONNECTIONS=10000 cargo test --release --test attacks many
    let n: usize = std::env::var("WSCHAT_ATTACK_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let per_connection = at_the_rate_limit(n, if n > 2000 { 10 } else { 4 }).await;
    assert!(per_connection < 64, "{per_connection} KiB per connection");
}
