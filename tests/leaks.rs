//! Security checks at the edge: Origin look-alikes, X-Forwarded-For trust,
//! path traversal on the static routes, security headers, and that no token
//! (the real one or near misses) ever shows in logs, metrics or replies.

mod common;

use std::time::Duration;

use common::{connect, http_request, Process, TestServer, ORIGIN, TOKEN};

fn upgrade(path_and_query: &str, extra_headers: &str) -> String {
    format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    )
}

#[tokio::test]
async fn origin_lookalikes_case_changes_trailing_slashes_null_and_missing_get_403() {
    let s = TestServer::start(&[]).await;
    let url = s.url("");
    for origin in [
        "http://localhost:8080.evil.example",
        "http://LOCALHOST:8080",
        "HTTP://localhost:8080",
        "http://localhost:8080/",
        "http://localhost:80800",
        "https://localhost:8080",
        "http://localhost",
        "null",
        "",
        "http://127.0.0.1:8080",
        "http://localhost:8080 http://evil.example",
    ] {
        assert_eq!(
            connect(&url, Some(origin)).await.err(),
            Some(403),
            "{origin:?}"
        );
    }
    assert_eq!(connect(&url, None).await.err(), Some(403), "missing Origin");
    let two = format!("Origin: {ORIGIN}\r\nOrigin: http://evil.example\r\n");
    let (status, _, _) =
        http_request(s.addr, &upgrade(&format!("/chat?token={TOKEN}"), &two)).await;
    assert_eq!(status, 403, "two Origin headers");
    assert!(connect(&url, Some(ORIGIN)).await.is_ok());
}

/// Two upgrades from 127.0.0.1 with different X-Forwarded-For values;
/// returns the statuses under a one-connection-per-IP cap.
async fn two_forwarded(s: &TestServer) -> (u16, u16) {
    let a = format!("Origin: {ORIGIN}\r\nX-Forwarded-For: 203.0.113.7\r\n");
    let b = format!("Origin: {ORIGIN}\r\nX-Forwarded-For: 198.51.100.9, 127.0.0.1\r\n");
    let req = |h: &str| upgrade(&format!("/chat?token={TOKEN}"), h);
    // The first one stays open (it is a WebSocket now) while the second asks.
    let mut first = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut first, req(&a).as_bytes())
        .await
        .expect("write");
    let mut head = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut first, &mut head)
        .await
        .expect("status line");
    let first_status = String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0);
    let (second, _, _) = http_request(s.addr, &req(&b)).await;
    (first_status, second)
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let cap = ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "1");
    let untrusted = TestServer::start(&[cap]).await;
    assert_eq!(
        two_forwarded(&untrusted).await,
        (101, 429),
        "both count as 127.0.0.1"
    );
    let trusted =
        TestServer::start(&[cap, ("CHAT__SERVER__TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    assert_eq!(
        two_forwarded(&trusted).await,
        (101, 101),
        "behind a trusted proxy each forwarded client has its own cap"
    );
}

/// An ignored `X-Forwarded-For` is logged, once: behind an ingress missing
/// from `server.trusted_proxies` every client would share one address.
#[tokio::test]
async fn an_ignored_x_forwarded_for_is_logged_once_without_the_token() {
    let p = Process::start(&[], &[]);
    for client in ["203.0.113.7", "198.51.100.9"] {
        let headers = format!("Origin: {ORIGIN}\r\nX-Forwarded-For: {client}\r\n");
        let (status, _, _) = http_request(
            p.addr(),
            &upgrade(&format!("/chat?token={TOKEN}"), &headers),
        )
        .await;
        assert_eq!(status, 101);
    }
    p.signal("TERM");
    let (_, logs) = tokio::task::spawn_blocking(move || p.wait_exit(Duration::from_secs(20)))
        .await
        .expect("wait");
    let warned = logs.matches("X-Forwarded-For ignored").count();
    assert_eq!(warned, 1, "{logs}");
    assert!(logs.contains("server.trusted_proxies") && logs.contains("127.0.0.1"));
    assert!(!logs.contains(TOKEN) && !logs.contains("203.0.113.7"));
}

#[tokio::test]
async fn static_routes_have_no_path_traversal_and_carry_nosniff_and_a_csp() {
    let s = TestServer::start(&[]).await;
    for path in [
        "/../Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2e%2e%2fsrc%2fmain.rs",
        "/app.js/..",
        "/app.js/../../Cargo.toml",
        "/client/app.js",
        "/src/client/index.html",
        "//etc/passwd",
        "/..\\..\\Cargo.toml",
        "/index.html%00.js",
        "/./app.js/.",
    ] {
        let (status, head, body) = http_request(
            s.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(matches!(status, 400 | 404), "{path}: {status}");
        assert!(
            !body.contains("[package]") && !body.contains("fn main"),
            "{path}"
        );
        if status == 404 {
            assert!(
                head.to_ascii_lowercase()
                    .contains("x-content-type-options: nosniff"),
                "{path}"
            );
        }
    }
    for path in [
        "/",
        "/index.html",
        "/app.js",
        "/strings.js",
        "/rooms.js",
        "/app.css",
        "/page-config.json",
        "/healthz",
    ] {
        let (status, head, _) = http_request(
            s.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        let head = head.to_ascii_lowercase();
        assert_eq!(status, 200, "{path}");
        assert!(head.contains("x-content-type-options: nosniff"), "{path}");
        if path == "/" || path == "/index.html" {
            assert!(
                head.contains("content-security-policy: default-src 'none'"),
                "{path}"
            );
        }
    }
    // Refused upgrades carry nosniff too.
    let (status, head, _) = http_request(
        s.addr,
        &upgrade("/chat?token=nope", &format!("Origin: {ORIGIN}\r\n")),
    )
    .await;
    assert_eq!(status, 401);
    assert!(head
        .to_ascii_lowercase()
        .contains("x-content-type-options: nosniff"));
}

/// The real token: distinctive, so any occurrence anywhere is a leak.
const SECRET: &str = "zq7-S3CRET-tok3n-41x9";

#[tokio::test]
async fn no_token_real_or_near_miss_appears_in_logs_metrics_or_replies() {
    let p = Process::start(
        &[
            ("CHAT_TOKEN", SECRET),
            ("RUST_LOG", "debug"),
            ("CHAT__LIMITS__IP_CONNECT_BURST", "1000"),
            // 21 near misses, then the real token from the same address.
            ("CHAT__LIMITS__IP_AUTH_FAILURE_BURST", "1000"),
        ],
        &[],
    );
    let near_misses = [
        "zq7-S3CRET-tok3n-41x8",
        "zq7-S3CRET-tok3n-41x",
        "zq7-S3CRET-tok3n-41x99",
        "ZQ7-S3CRET-TOK3N-41X9",
        "zq7-S3CRET-tok3n-41x9%00",
        "zq7-S3CRET-tok3n-41x9 ",
        "xzq7-S3CRET-tok3n-41x9",
    ];
    let mut replies = String::new();
    let send = |req: String| {
        let addr = p.addr();
        async move {
            let (status, head, body) = http_request(addr, &req).await;
            format!("{status}\n{head}\n{body}\n")
        }
    };
    let origin = format!("Origin: {ORIGIN}\r\n");
    for bad in near_misses {
        replies += &send(upgrade(&format!("/chat?token={bad}"), &origin)).await;
        replies += &send(upgrade(
            "/chat",
            &format!("{origin}Authorization: Bearer {bad}\r\n"),
        ))
        .await;
        replies += &send(upgrade(
            &format!("/chat?token={bad}&room=a%20b&name=%ff"),
            &origin,
        ))
        .await;
    }
    // The real token with every other check failing.
    let real = format!("/chat?token={SECRET}");
    replies += &send(upgrade(&real, "Origin: http://evil.example\r\n")).await;
    replies += &send(upgrade(&real, "")).await;
    replies += &send(upgrade(
        "/nope",
        &format!("{origin}Authorization: Bearer {SECRET}\r\n"),
    ))
    .await;
    replies += &send(format!(
        "GET {real} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ))
    .await;
    replies += &send(format!(
        "POST {real} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    ))
    .await;
    replies += &send(format!(
        "GET /x?token={SECRET} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ))
    .await;
    replies += &send(upgrade(
        &real,
        &format!("{origin}Sec-WebSocket-Version: 8\r\n"),
    ))
    .await;
    replies += &send(format!(
        "GET {real} HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
    ))
    .await;
    // A real session with the real token, bad frames and a bad message.
    let url = format!("ws://{}/chat?token={SECRET}&room=leak", p.addr());
    let mut c = connect(&url, Some(ORIGIN))
        .await
        .expect("real token connects");
    c.send_text("not json").await;
    replies += &c.next_of("error").await.to_string();
    c.send_text(r#"{"type":"join"}"#).await;
    replies += &c.next_of("error").await.to_string();
    c.say("hi").await;
    replies += &c.next_message().await.to_string();
    c.bye().await;
    // The session has ended (and been logged and counted) before the look.
    common::wait_for_metric(p.admin_addr(), "wschat_connections", "== 0", |v| v == 0.0).await;

    let (_, metrics) = common::http_get(p.admin_addr(), "/metrics").await;
    let (_, health) = common::http_get(p.admin_addr(), "/healthz").await;
    p.signal("TERM");
    let (_, logs) = p.wait_exit(Duration::from_secs(20));
    assert!(logs.contains("upgrade refused"), "debug logs were captured");
    for (what, text) in [
        ("logs", &logs),
        ("metrics", &metrics),
        ("replies", &replies),
        ("health", &health),
    ] {
        for token in std::iter::once(SECRET).chain(near_misses) {
            let needle = token.trim_end_matches(['%', '0', ' ']);
            assert!(!text.contains(needle), "{what} contain {token:?}");
        }
        assert!(
            !text.to_lowercase().contains("s3cret"),
            "{what} contain part of a token"
        );
    }
}
