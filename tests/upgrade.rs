//! The gate: every refusal happens before the upgrade, with its status code.

mod common;

use common::{connect, http_request, TestServer, ORIGIN, TOKEN};
use std::io::Write;

fn upgrade_request(path_query: &str, extra: &str) -> String {
    format!(
        "GET {path_query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn refusals_get_their_status_before_any_upgrade() {
    let s = TestServer::start(&[]).await;
    let ok_headers = format!("Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n");
    let cases = [
        (
            upgrade_request(&format!("/other?token={TOKEN}"), &ok_headers),
            404,
            "not_found",
        ),
        (
            format!("GET /chat?token={TOKEN} HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\n\r\n"),
            400,
            "bad_request",
        ),
        (
            upgrade_request(
                &format!("/chat?token={TOKEN}"),
                &format!("Sec-WebSocket-Version: 8\r\nOrigin: {ORIGIN}\r\n"),
            ),
            426,
            "bad_request",
        ),
        (
            upgrade_request(
                &format!("/chat?token={TOKEN}"),
                "Sec-WebSocket-Version: 13\r\n",
            ),
            403,
            "origin",
        ),
        (
            upgrade_request(
                &format!("/chat?token={TOKEN}"),
                "Sec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n",
            ),
            403,
            "origin",
        ),
        (upgrade_request("/chat", &ok_headers), 401, "token"),
        (
            upgrade_request("/chat?token=wrong", &ok_headers),
            401,
            "token",
        ),
    ];
    for (req, status, reason) in cases {
        let (got, head, _) = http_request(s.addr, &req).await;
        assert_eq!(got, status, "{req}\n{head}");
        assert!(!head.contains("101"), "{head}");
        if status == 426 {
            assert!(
                head.to_lowercase().contains("sec-websocket-version: 13"),
                "{head}"
            );
        }
        assert!(
            s.metric(&format!(
                "wschat_upgrade_rejections_total{{reason=\"{reason}\"}}"
            ))
            .await
                >= 1.0
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn a_bearer_header_works_like_the_query_token() {
    let s = TestServer::start(&[]).await;
    let (status, head, _) = http_request(
        s.addr,
        &upgrade_request(
            "/chat?room=b",
            &format!("Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\nAuthorization: Bearer {TOKEN}\r\n"),
        ),
    )
    .await;
    assert_eq!(status, 101, "{head}");
    s.stop().await;
}

#[tokio::test]
async fn a_missing_origin_is_allowed_only_when_configured() {
    let s = TestServer::start(&[("CHAT__AUTH__ALLOW_MISSING_ORIGIN", "true")]).await;
    assert!(connect(&s.url("room=x"), None).await.is_ok());
    assert_eq!(
        connect(&s.url("room=x"), Some("http://evil.example"))
            .await
            .err(),
        Some(403)
    );
    s.stop().await;
}

#[tokio::test]
async fn wildcard_origins_admit_subdomains() {
    let s = TestServer::start(&[("CHAT__AUTH__ALLOWED_ORIGINS", "https://*.example.com")]).await;
    assert!(connect(&s.url(""), Some("https://chat.example.com"))
        .await
        .is_ok());
    assert_eq!(
        connect(&s.url(""), Some("https://example.com")).await.err(),
        Some(403)
    );
    assert_eq!(
        connect(&s.url(""), Some("https://chat.example.com.evil.io"))
            .await
            .err(),
        Some(403)
    );
    s.stop().await;
}

#[tokio::test]
async fn room_limited_and_hashed_tokens_from_a_tokens_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let hashed: String = ws_chat::auth::digest("hashed-secret")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    write!(
        file,
        "[[tokens]]\ntoken = \"ops-only\"\nrooms = [\"ops\"]\n\n[[tokens]]\ntoken = \"sha256:{hashed}\"\n\n\
         [[tokens]]\ntoken = \"reader\"\nread_only = true\n"
    )
    .unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let s = TestServer::start(&[("CHAT__AUTH__TOKENS_FILE", &path)]).await;
    let url = |token: &str, room: &str| format!("ws://{}/chat?token={token}&room={room}", s.addr);
    assert!(connect(&url("ops-only", "ops"), Some(ORIGIN)).await.is_ok());
    assert_eq!(
        connect(&url("ops-only", "lobby"), Some(ORIGIN)).await.err(),
        Some(401)
    );
    assert!(connect(&url("hashed-secret", "any"), Some(ORIGIN))
        .await
        .is_ok());
    assert_eq!(
        connect(&url("sha256:{hashed}", "any"), Some(ORIGIN))
            .await
            .err(),
        Some(401)
    );

    let mut reader = connect(&url("reader", "ro"), Some(ORIGIN)).await.unwrap();
    reader.next_of("history").await;
    reader.say("may I?").await;
    assert_eq!(reader.next_of("error").await["code"], "forbidden");
    let (mut writer, _) = s.join("room=ro").await;
    writer.say("yes you may read").await;
    assert_eq!(reader.next_message().await["text"], "yes you may read");
    s.stop().await;
}

#[tokio::test]
async fn per_ip_connection_rate_and_cap_answer_429_with_retry_after() {
    let s = TestServer::start(&[
        ("CHAT__LIMITS__IP_CONNECT_BURST", "3"),
        ("CHAT__LIMITS__IP_CONNECT_REFILL", "30s"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(s.connect("").await);
    }
    let req = upgrade_request(
        &format!("/chat?token={TOKEN}"),
        &format!("Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n"),
    );
    let (status, head, _) = http_request(s.addr, &req).await;
    assert_eq!(status, 429, "{head}");
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("retry-after: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("Retry-After");
    assert!((1..=30).contains(&retry), "{retry}");
    s.stop().await;

    let s = TestServer::start(&[("CHAT__LIMITS__IP_MAX_CONNECTIONS", "2")]).await;
    let a = s.connect("").await;
    let _b = s.connect("").await;
    assert_eq!(connect(&s.url(""), Some(ORIGIN)).await.err(), Some(429));
    a.bye().await;
    // The place comes back once the session has ended.
    common::eventually(
        "the place to come back once the session ended (seen: refusal status)",
        common::WAIT,
        async || connect(&s.url(""), Some(ORIGIN)).await.map(|_| ()),
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn the_global_cap_answers_503_with_retry_after() {
    let s = TestServer::start(&[("CHAT__LIMITS__MAX_CONNECTIONS", "1")]).await;
    let _only = s.connect("").await;
    let req = upgrade_request(
        &format!("/chat?token={TOKEN}"),
        &format!("Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n"),
    );
    let (status, head, _) = http_request(s.addr, &req).await;
    assert_eq!(status, 503);
    assert!(head.to_lowercase().contains("retry-after:"), "{head}");
    assert_eq!(
        s.metric("wschat_upgrade_rejections_total{reason=\"capacity\"}")
            .await,
        1.0
    );
    s.stop().await;
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    // Untrusted peer: X-Forwarded-For is ignored, so spoofed addresses share one budget.
    let s = TestServer::start(&[("CHAT__LIMITS__IP_MAX_CONNECTIONS", "1")]).await;
    let first = upgrade_request(
        &format!("/chat?token={TOKEN}"),
        &format!("Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\nX-Forwarded-For: 10.0.0.1\r\n"),
    );
    let second = first.replace("10.0.0.1", "10.0.0.2");
    let _held = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut a = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut a, first.as_bytes())
        .await
        .unwrap();
    // Its 101 means it holds the address's one place.
    let head = common::response_head(&mut a).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(http_request(s.addr, &second).await.0, 429);
    s.stop().await;

    // Trusted loopback proxy: each forwarded client has its own budget.
    let s = TestServer::start(&[
        ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "1"),
        ("CHAT__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let mut a = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut a, first.as_bytes())
        .await
        .unwrap();
    // Its 101 means 10.0.0.1 holds its one place.
    let head = common::response_head(&mut a).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(http_request(s.addr, &second).await.0, 101);
    s.stop().await;
}
