//! Before the upgrade, HTTP connections are bounded too, against the real
//! binary over real sockets: keep-alive connections per address and in all
//! (closed at accept), request heads (431 at 16 KiB, read no further), and
//! an upgraded connection gives its pre-upgrade place back.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{tcp_from, Process, ORIGIN, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads a response head; `None` when the server closes (or resets) the
/// connection before sending one.
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(common::WAIT, s.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            Ok(_) => break,
            Err(_) => panic!("neither a response nor a close within {:?}", common::WAIT),
        }
    }
    (!head.is_empty()).then(|| String::from_utf8_lossy(&head).into_owned())
}

fn status_of(head: &str) -> u16 {
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok());
    status.unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// A keep-alive `GET path` on `s`, body read; `None` when the server closed
/// the connection instead of answering.
async fn get(s: &mut TcpStream, path: &str) -> Option<u16> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return None;
    }
    let head = read_head(s).await?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).await.ok()?;
    Some(status_of(&head))
}

/// `n` connections from `from`, each kept alive after a `GET /healthz`.
async fn keep_alive(from: Ipv4Addr, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for i in 0..n {
        let mut s = tcp_from(from, to).await;
        assert_eq!(get(&mut s, "/healthz").await, Some(200), "{from} #{i}");
        held.push(s);
    }
    held
}

/// Whether a new connection from `from` is served or closed at accept.
async fn served(from: Ipv4Addr, to: SocketAddr) -> bool {
    get(&mut tcp_from(from, to).await, "/healthz").await == Some(200)
}

async fn metric(p: &Process, series: &str) -> f64 {
    common::metric_at(p.admin_addr(), series).await
}

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

#[tokio::test]
async fn keep_alive_connections_from_one_address_are_capped_at_32() {
    let p = Process::start(&[], &[]);
    let mut held = keep_alive(ATTACKER, p.addr(), 32).await;
    // The 33rd is closed as soon as it is accepted: no response at all.
    assert!(!served(ATTACKER, p.addr()).await, "a 33rd connection");
    assert!(served(OTHER, p.addr()).await, "another address");
    // The ones held are still served, and hold their places.
    assert_eq!(get(&mut held[0], "/healthz").await, Some(200));
    let refused = "wschat_http_refused_total{reason=\"ip_cap\"}";
    assert_eq!(metric(&p, refused).await, 1.0);
    assert_eq!(metric(&p, "wschat_http_connections").await, 32.0);
    // Closing one gives its place back (once the server has seen the close).
    drop(held.pop());
    common::eventually("a place after a close", common::WAIT, async || {
        served(ATTACKER, p.addr()).await.then_some(()).ok_or(())
    })
    .await;
}

#[tokio::test]
async fn connections_before_the_upgrade_are_capped_in_all() {
    let env = [("CHAT__SERVER__MAX_HTTP_CONNECTIONS", "6")];
    let p = Process::start(&env, &[]);
    let _a = keep_alive(ATTACKER, p.addr(), 3).await;
    let _b = keep_alive(OTHER, p.addr(), 3).await;
    assert!(!served(Ipv4Addr::new(127, 0, 0, 4), p.addr()).await);
    let refused = "wschat_http_refused_total{reason=\"capacity\"}";
    assert_eq!(metric(&p, refused).await, 1.0);
    // The admin listener has no such cap: its probes still answer.
    assert_eq!(common::http_get(p.admin_addr(), "/readyz").await.0, 200);
}

#[tokio::test]
async fn an_upgraded_connection_gives_its_pre_upgrade_place_back() {
    let env = [("CHAT__SERVER__IP_MAX_HTTP_CONNECTIONS", "2")];
    let p = Process::start(&env, &[]);
    let mut sockets = Vec::new();
    for i in 0..5 {
        let url = p.url(&format!("name=ws{i}"));
        let c = common::connect(&url, Some(ORIGIN)).await;
        sockets.push(c.unwrap_or_else(|s| panic!("WebSocket {i} refused with {s}")));
    }
    // Five WebSockets from 127.0.0.1 hold none of its two HTTP places.
    common::wait_for_metric(p.admin_addr(), "wschat_http_connections", "== 0", |v| {
        v == 0.0
    })
    .await;
    let _held = keep_alive(Ipv4Addr::LOCALHOST, p.addr(), 2).await;
    assert!(!served(Ipv4Addr::LOCALHOST, p.addr()).await);
    assert_eq!(metric(&p, "wschat_http_connections").await, 2.0);
    assert_eq!(metric(&p, "wschat_connections").await, 5.0);
}

#[tokio::test]
async fn a_trusted_proxy_counts_only_against_the_total() {
    let env = [
        ("CHAT__SERVER__IP_MAX_HTTP_CONNECTIONS", "2"),
        ("CHAT__SERVER__TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let p = Process::start(&env, &[]);
    // The proxy speaks for many clients: 6 connections, over the per-address 2.
    let _proxy = keep_alive(Ipv4Addr::LOCALHOST, p.addr(), 6).await;
    let _attacker = keep_alive(ATTACKER, p.addr(), 2).await;
    assert!(!served(ATTACKER, p.addr()).await);
}

/// A request head of exactly `bytes` bytes (at least 1100): `X-Pad`
/// headers of 1000 bytes and one shorter one.
fn big_head(path: &str, bytes: usize) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    let pad = |req: &mut String, i: usize, n: usize| {
        req.push_str(&format!("X-Pad-{i:03}: {}\r\n", "p".repeat(n - 13)));
    };
    let mut i = 0;
    while bytes - req.len() - 2 > 2000 {
        pad(&mut req, i, 1000);
        i += 1;
    }
    let rest = bytes - req.len() - 2;
    pad(&mut req, i, rest);
    req += "\r\n";
    assert_eq!(req.len(), bytes);
    req
}

/// Sends `req` in `chunk`-byte writes `pause` apart while reading; returns
/// the status of the response (None: closed without one) and the bytes
/// written before it came.
async fn dribble(
    to: SocketAddr,
    req: String,
    chunk: usize,
    pause: Duration,
) -> (Option<u16>, usize) {
    let (mut rd, mut wr) = TcpStream::connect(to).await.expect("connect").into_split();
    let reader = tokio::spawn(async move {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        (!head.is_empty()).then(|| status_of(&String::from_utf8_lossy(&head)))
    });
    let mut sent = 0;
    for part in req.as_bytes().chunks(chunk) {
        if reader.is_finished() || wr.write_all(part).await.is_err() {
            break;
        }
        sent += part.len();
        tokio::time::sleep(pause).await;
    }
    let status = tokio::time::timeout(common::WAIT, reader)
        .await
        .expect("a response or a close")
        .expect("reader");
    (status, sent)
}

#[tokio::test]
async fn request_heads_over_16_kib_get_431_and_are_read_no_further() {
    let p = Process::start(&[], &[]);
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    s.write_all(big_head("/healthz", 15_000).as_bytes())
        .await
        .expect("write");
    assert_eq!(read_head(&mut s).await.map(|h| status_of(&h)), Some(200));
    // A whole 17 KB head in one write, then read: the 431 comes back.
    for addr in [p.addr(), p.admin_addr()] {
        let got = dribble(addr, big_head("/healthz", 17_000), 17_000, Duration::ZERO).await;
        assert_eq!(got.0, Some(431), "{addr}");
    }
    // 20 clients dribbling 400 KB of headers each, 4 KiB every 10 ms: each
    // is answered 431 once it passes 16 KiB, having sent little more.
    let to = p.addr();
    let dribblers: Vec<_> = (0..20)
        .map(|_| {
            let req = big_head("/healthz", 400_000);
            tokio::spawn(dribble(to, req, 4096, Duration::from_millis(10)))
        })
        .collect();
    for d in dribblers {
        let (status, sent) = d.await.expect("dribbler");
        assert_eq!(status, Some(431), "after {sent} bytes");
        assert!(sent <= 64 * 1024, "{sent} bytes sent before the 431");
    }
    let refused = "wschat_http_refused_total{reason=\"header_too_large\"}";
    assert_eq!(metric(&p, refused).await, 22.0);
    // An upgrade request is a request head like any other.
    let (status, _) = dribble(
        p.addr(),
        big_head(&format!("/chat?token={TOKEN}"), 17_000),
        17_000,
        Duration::ZERO,
    )
    .await;
    assert_eq!(status, Some(431));
}
