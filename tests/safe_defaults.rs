//! Safe defaults (issue 16, part 5) against the real server: the built-in
//! dev token only from loopback, reserved names, and texts and names that
//! cannot deceive (PROTOCOL.md §8 and §13).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{http_request, Process, TestServer, ORIGIN};

/// A raw upgrade of `/chat?<query>` from this (loopback) socket, with extra
/// header lines; returns the status.
async fn upgrade(addr: SocketAddr, query: &str, headers: &str) -> u16 {
    let req = format!(
        "GET /chat?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: {ORIGIN}\r\n{headers}\r\n"
    );
    http_request(addr, &req).await.0
}

/// The built-in `dev-token` (no token configured) is for the machine
/// itself. The client is simulated as remote through a trusted proxy on
/// 127.0.0.1 and `X-Forwarded-For`: the rule looks at the client address the
/// gate uses for everything else (the forwarded one), not at the TCP peer,
/// or a reverse proxy on the same host would make every client local.
#[tokio::test]
async fn the_builtin_dev_token_is_accepted_from_loopback_clients_only() {
    let env = [
        ("CHAT__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
        ("CHAT__LIMITS__IP_AUTH_FAILURE_BURST", "100"),
        ("CHAT__TELEMETRY__LOG_FORMAT", "text"),
    ];
    let p = Process::start_without(&env, &[], &["CHAT_TOKEN"]);
    let q = "token=dev-token&room=lobby";
    assert_eq!(upgrade(p.addr(), q, "").await, 101, "loopback peer");
    for local in ["127.0.0.1", "127.3.2.1", "::1"] {
        let xff = format!("X-Forwarded-For: {local}\r\n");
        assert_eq!(upgrade(p.addr(), q, &xff).await, 101, "forwarded {local}");
    }
    for remote in [
        "203.0.113.9",
        "10.0.0.7",
        "2001:db8::1",
        "198.51.100.1, 127.0.0.1",
    ] {
        let xff = format!("X-Forwarded-For: {remote}\r\n");
        assert_eq!(upgrade(p.addr(), q, &xff).await, 401, "forwarded {remote}");
        let bearer = format!("X-Forwarded-For: {remote}\r\nAuthorization: Bearer dev-token\r\n");
        assert_eq!(
            upgrade(p.addr(), "room=lobby", &bearer).await,
            401,
            "bearer from {remote}"
        );
    }
    p.signal("TERM");
    let (_, out) = tokio::task::spawn_blocking(move || p.wait_exit(Duration::from_secs(15)))
        .await
        .expect("join");
    let line = out
        .lines()
        .find(|l| l.contains("loopback"))
        .unwrap_or_else(|| panic!("no startup line about loopback:\n{out}"));
    assert!(
        line.contains("dev-token") && line.contains("WARN"),
        "{line}"
    );

    // A configured token, even the same well-known value, works from anywhere.
    for configured in [
        ("CHAT_TOKEN", "dev-token"),
        ("CHAT__AUTH__TOKENS", "dev-token"),
    ] {
        let p = Process::start(&[env[0], configured], &[]);
        let xff = "X-Forwarded-For: 203.0.113.9\r\n";
        assert_eq!(upgrade(p.addr(), q, xff).await, 101, "{configured:?}");
    }
    let p = Process::start(&env[..1], &[]);
    let xff = "X-Forwarded-For: 203.0.113.9\r\n";
    assert_eq!(upgrade(p.addr(), "token=test-token", xff).await, 101);
    assert_eq!(
        upgrade(p.addr(), "token=dev-token", xff).await,
        401,
        "not configured: unknown"
    );
}

/// PROTOCOL.md §8: guests may not take a reserved name; like any name that
/// is not valid, it becomes `guest`. Matching ignores case, spaces, `-`, `_`
/// and the characters §13 removes.
#[tokio::test]
async fn guests_asking_for_a_reserved_name_are_named_guest() {
    let s = TestServer::start(&[]).await;
    let name_for = async |asked: &str| {
        let mut c = s.connect(&format!("room=names&name={asked}")).await;
        let system = c.next_of("system").await;
        c.bye().await;
        system["message"].as_str().unwrap_or_default().to_string()
    };
    for reserved in [
        "admin",
        "Admin",
        "ADMIN",
        "ad+min",
        "System",
        "moderator",
        "server",
        "ws-chat",
        "WS_Chat",
        "ws+chat",
        "administrator",
        "%E2%80%AEadmin",
        "ad%07min",
    ] {
        assert_eq!(name_for(reserved).await, "connected as guest", "{reserved}");
    }
    for free in ["ana", "admins", "sysadmin", "chat"] {
        assert_eq!(name_for(free).await, format!("connected as {free}"));
    }
    s.stop().await;

    // The list is a setting: here only "boss".
    let s = TestServer::start(&[("CHAT__AUTH__RESERVED_NAMES", "boss")]).await;
    let mut c = s.connect("name=Boss").await;
    assert_eq!(c.next_of("system").await["message"], "connected as guest");
    let mut c2 = s.connect("name=admin").await;
    assert_eq!(c2.next_of("system").await["message"], "connected as admin");
    s.stop().await;
}

/// PROTOCOL.md §13: C0/C1 controls (but newline and tab) and bidirectional
/// overrides and isolates are removed from texts before the emptiness and
/// length checks, and from names.
#[tokio::test]
async fn controls_and_bidi_overrides_are_removed_from_texts_and_names() {
    let s = TestServer::start(&[]).await;
    let (mut a, _) = s.join("room=clean&name=ana%E2%80%AE%07").await;
    let (mut b, _) = s.join("room=clean&name=bo").await;
    for (sent, shown) in [
        ("\u{202e}evil\u{202c}", "evil"),
        ("a\r\nb\tc", "a\nb\tc"),
        ("\u{1b}[2Jhi\u{7}", "[2Jhi"),
        ("\u{2066}x\u{2069}\u{85}", "x"),
        // 505 characters sent, 5 once the removed ones are gone: within the
        // 500-character limit, which counts what is left.
        (&format!("{}hello", "\u{202e}".repeat(500)), "hello"),
    ] {
        a.say(sent).await;
        let m = b.next_message().await;
        assert_eq!(m["text"], shown, "{sent:?}");
        assert_eq!(m["from"], "ana");
    }
    a.say("\u{202e}\u{0}\u{7} \u{9f}").await;
    let e = a.next_of("error").await;
    assert_eq!(e["code"], "empty");
    s.stop().await;
}
