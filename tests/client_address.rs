//! The client address the per-IP limits see, against the real binary: IPv6
//! clients keyed by their /64, IPv4 peers of a dual-stack listener matched
//! against IPv4 proxies, and `X-Forwarded-For` chains walked from the right
//! so that no entry a client writes gets it a fresh budget. Requests are
//! written by hand over real sockets, forged from a trusted loopback proxy.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use common::{Process, ORIGIN, TOKEN};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Settings for a binary that trusts the loopback proxies and locks an
/// address out after 3 failed token checks for a minute.
const PROXY: [(&str, &str); 4] = [
    ("CHAT__SERVER__TRUSTED_PROXIES", "127.0.0.1, ::1"),
    ("CHAT__LIMITS__IP_AUTH_FAILURE_BURST", "3"),
    ("CHAT__LIMITS__IP_AUTH_FAILURE_REFILL", "60s"),
    ("CHAT__LIMITS__IP_CONNECT_BURST", "1000"),
];

/// Sends an upgrade request to `addr` with `token` and one
/// `X-Forwarded-For` line per entry of `forwarded`; returns the status and
/// the stream (a 101 keeps its connection, and its place under the caps).
async fn upgrade(addr: SocketAddr, token: &str, forwarded: &[&str]) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let lines: String = forwarded
        .iter()
        .map(|f| format!("X-Forwarded-For: {f}\r\n"))
        .collect();
    let req = format!(
        "GET /chat?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n{lines}\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let head = common::response_head(&mut s).await;
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok());
    (status.unwrap_or_else(|| panic!("no status in {head:?}")), s)
}

/// Fails token checks for the client `forwarded` until it is locked out
/// (429); panics if that takes more than the budget allows.
async fn lock_out(addr: SocketAddr, forwarded: &[&str]) {
    for i in 0..6 {
        match upgrade(addr, &format!("guess-{i}"), forwarded).await.0 {
            401 => continue,
            429 => return,
            other => panic!("{forwarded:?}: {other} for a wrong token"),
        }
    }
    panic!("{forwarded:?} not locked out after 6 wrong tokens");
}

fn at(ip: IpAddr, p: &Process) -> SocketAddr {
    SocketAddr::new(ip, p.port)
}

#[tokio::test]
async fn one_ipv6_slash_64_is_one_client_for_the_lock_out_and_the_connection_cap() {
    let mut env = PROXY.to_vec();
    env.push(("CHAT__LIMITS__IP_MAX_CONNECTIONS", "2"));
    let p = Process::start(&env, &[]);
    let addr = p.addr();

    lock_out(addr, &["2001:db8::1"]).await;
    // Another address of the same /64 used to start a fresh budget.
    assert_eq!(upgrade(addr, TOKEN, &["2001:db8::2"]).await.0, 429);
    assert_eq!(upgrade(addr, TOKEN, &["[2001:db8::ff:2]:443"]).await.0, 429);
    let (other_net, _held) = upgrade(addr, TOKEN, &["2001:db8:0:1::1"]).await;
    assert_eq!(other_net, 101, "the next /64 is someone else");

    // The per-IP connection cap (2) counts the /64 too.
    let (a, _a) = upgrade(addr, TOKEN, &["2001:db8:0:2::a"]).await;
    let (b, _b) = upgrade(addr, TOKEN, &["2001:db8:0:2::b"]).await;
    assert_eq!((a, b), (101, 101));
    assert_eq!(upgrade(addr, TOKEN, &["2001:db8:0:2::c"]).await.0, 429);
    assert_eq!(upgrade(addr, TOKEN, &["2001:db8:0:3::c"]).await.0, 101);
}

#[tokio::test]
async fn ipv6_prefix_128_keys_every_ipv6_address_apart() {
    let mut env = PROXY.to_vec();
    env.push(("CHAT__LIMITS__IPV6_PREFIX", "128"));
    let p = Process::start(&env, &[]);
    lock_out(p.addr(), &["2001:db8::1"]).await;
    assert_eq!(upgrade(p.addr(), TOKEN, &["2001:db8::1"]).await.0, 429);
    assert_eq!(upgrade(p.addr(), TOKEN, &["2001:db8::2"]).await.0, 101);
}

#[tokio::test]
async fn a_dual_stack_listener_trusts_ipv4_proxies_and_ipv6_loopback() {
    let mut env = PROXY.to_vec();
    env.push(("CHAT__SERVER__HOST", "::"));
    let p = Process::start(&env, &[]);
    // An IPv4 peer arrives as ::ffff:127.0.0.1; it must still be the
    // trusted 127.0.0.1, or every client behind it shares its budget.
    let v4 = p.addr();
    lock_out(v4, &["198.51.100.7"]).await;
    let (other, _held) = upgrade(v4, TOKEN, &["198.51.100.8"]).await;
    assert_eq!(other, 101, "198.51.100.8 is not 198.51.100.7");
    // The same client forwarded by the IPv6 loopback proxy, and written
    // IPv4-mapped, is the same client.
    let v6 = at(IpAddr::V6(Ipv6Addr::LOCALHOST), &p);
    assert_eq!(upgrade(v6, TOKEN, &["198.51.100.7"]).await.0, 429);
    assert_eq!(upgrade(v6, TOKEN, &["::ffff:198.51.100.7"]).await.0, 429);
    let (fresh, _held) = upgrade(v6, TOKEN, &["198.51.100.9"]).await;
    assert_eq!(fresh, 101);
    let admin = p.admin_addr();
    let forwarded = "wschat_client_address_total{source=\"forwarded\"}";
    assert!(common::metric_at(admin, forwarded).await >= 9.0);
    let peer = "wschat_client_address_total{source=\"peer\"}";
    assert_eq!(common::metric_at(admin, peer).await, 0.0);
}

#[tokio::test]
async fn an_ipv6_loopback_listener_serves_and_caps_ipv6_peers() {
    // No proxy: the peer itself is the client. ::1 is its own /64 (::/64).
    let env = [
        ("CHAT__SERVER__HOST", "::1"),
        ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "1"),
    ];
    let p = Process::start(&env, &[]);
    let v6 = at(IpAddr::V6(Ipv6Addr::LOCALHOST), &p);
    let (first, _held) = upgrade(v6, TOKEN, &[]).await;
    assert_eq!(first, 101);
    assert_eq!(upgrade(v6, TOKEN, &[]).await.0, 429);
}

#[tokio::test]
async fn a_forwarded_chain_is_read_from_the_right_and_junk_gets_no_fresh_budget() {
    let p = Process::start(&PROXY, &[]);
    let addr = p.addr();
    lock_out(addr, &["198.51.100.7"]).await;
    // Junk the client wrote left of the address the proxy appended used to
    // make the server fall back to the proxy's address, and let it in.
    assert_eq!(upgrade(addr, TOKEN, &["junk, 198.51.100.7"]).await.0, 429);
    assert_eq!(upgrade(addr, TOKEN, &["198.51.100.7:5555"]).await.0, 429);
    assert_eq!(upgrade(addr, TOKEN, &["x", "198.51.100.7"]).await.0, 429);
    assert_eq!(
        upgrade(addr, TOKEN, &["198.51.100.7", "127.0.0.1, 127.0.0.1"])
            .await
            .0,
        429,
        "trusted hops on a later line are skipped"
    );
    // Junk where the client should be stands for the proxy that forwarded
    // it: a new junk entry each time still spends the proxy's one budget.
    // Three failures fill the budget, the fourth is checked and locks it.
    for i in 0..5 {
        let junk = format!("198.51.100.7, unknown-{i}");
        let (status, _) = upgrade(addr, &format!("guess-{i}"), &[&junk]).await;
        assert_eq!(status, if i < 4 { 401 } else { 429 }, "{junk}");
    }
    assert_eq!(upgrade(addr, TOKEN, &["junk-again"]).await.0, 429);
    assert_eq!(upgrade(addr, TOKEN, &[]).await.0, 429, "the proxy itself");
    let (other, _held) = upgrade(addr, TOKEN, &["198.51.100.9"]).await;
    assert_eq!(other, 101, "a well-formed client is still its own");
    let malformed = "wschat_client_address_total{source=\"malformed\"}";
    assert_eq!(common::metric_at(p.admin_addr(), malformed).await, 6.0);
}
