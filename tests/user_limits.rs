//! Limits per identified user, end to end: real HS256 JWTs and a named
//! static token on a real server. A user's messages share one budget over
//! all of its connections, and its open connections one cap; guests and
//! other users are not affected.

mod common;

use common::jwt::{claims, now, secret_key, sign, start_with_config, url_with, write};
use common::{connect, eventually, http_request, Client, TestServer, ORIGIN, WAIT};
use jsonwebtoken::Algorithm;
use serde_json::json;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A server taking HS256 JWTs, the static token `named-ana` (user `ana`),
/// the test token (a guest), and `env` overrides.
async fn server(dir: &std::path::Path, env: &[(&str, &str)]) -> TestServer {
    let tokens = write(
        dir,
        "tokens.toml",
        "[[tokens]]\ntoken = \"named-ana\"\nuser = \"ana\"\n",
    );
    let config = format!(
        "[auth]\ntokens_file = \"{tokens}\"\n\
         [[auth.jwt.keys]]\nalg = \"HS256\"\nsecret = \"{SECRET}\"\n"
    );
    start_with_config(&dir.join("c.toml"), &config, env).await
}

/// A fresh token for `sub`: a distinct `jti` makes every one different.
fn jwt(sub: &str, n: u32) -> String {
    let mut c = claims(sub);
    c["jti"] = json!(format!("{sub}-{n}-{}", now()));
    sign(Algorithm::HS256, None, &c, &secret_key(SECRET.as_bytes()))
}

/// Joins `room` with `token`, reading `system` and `history`.
async fn join(server: &TestServer, token: &str, room: &str) -> Client {
    let mut c = connect(
        &url_with(server, token, &format!("room={room}")),
        Some(ORIGIN),
    )
    .await
    .unwrap_or_else(|s| panic!("refused with {s}"));
    c.next_of("system").await;
    c.next_of("history").await;
    c
}

/// Sends `n` messages saying `text`, then reads until each got its echo or
/// an error; returns (accepted, rate limited).
async fn send(c: &mut Client, text: &str, n: usize) -> (usize, usize) {
    for _ in 0..n {
        c.say(text).await;
    }
    let (mut accepted, mut limited) = (0, 0);
    while accepted + limited < n {
        let v = c.next().await;
        if v["type"] == "message" && v["message"]["text"] == text {
            accepted += 1;
        }
        if v["type"] == "error" {
            assert_eq!(v["code"], "rate_limited", "{v}");
            limited += 1;
        }
    }
    (accepted, limited)
}

#[tokio::test]
async fn a_users_messages_share_one_budget_across_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &[
            ("CHAT__LIMITS__USER_MESSAGE_BURST", "5"),
            ("CHAT__LIMITS__USER_MESSAGE_REFILL", "1h"),
        ],
    )
    .await;
    // Two JWTs of one user, and its named static token: one budget of 5.
    let mut a1 = join(&s, &jwt("ana", 1), "u").await;
    let mut a2 = join(&s, &jwt("ana", 2), "u").await;
    let mut a3 = join(&s, "named-ana", "u").await;
    let mut bo = join(&s, &jwt("bo", 1), "u").await;
    let mut guest = join(&s, common::TOKEN, "u").await;
    assert_eq!(send(&mut a1, "a1", 2).await, (2, 0));
    assert_eq!(send(&mut a2, "a2", 2).await, (2, 0));
    assert_eq!(
        send(&mut a3, "a3", 3).await,
        (1, 2),
        "seven sends of one user over a budget of five"
    );
    assert_eq!(send(&mut a1, "a1 again", 1).await, (0, 1));
    // Each connection is far below its own limit (20), and the IP (all of
    // these share 127.0.0.1) below its 200: only the user's budget refuses.
    assert_eq!(
        send(&mut bo, "bo", 5).await,
        (5, 0),
        "another user: a whole budget"
    );
    assert_eq!(
        send(&mut guest, "guest", 8).await,
        (8, 0),
        "a guest: no user budget"
    );
    assert_eq!(
        s.metric("wschat_rate_limited_total{scope=\"user\"}").await,
        3.0
    );
    assert_eq!(
        s.metric("wschat_rate_limited_total{scope=\"ip\"}").await,
        0.0
    );
    s.stop().await;
}

/// The status and `Retry-After` of an upgrade request with `token`.
async fn upgrade(s: &TestServer, token: &str) -> (u16, Option<String>) {
    let request = format!(
        "GET /chat?token={token} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {ORIGIN}\r\n\r\n"
    );
    let (status, head, _) = http_request(s.addr, &request).await;
    let retry = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after:")
            .map(|v| v.trim().to_string())
    });
    (status, retry)
}

#[tokio::test]
async fn a_user_over_its_connection_cap_gets_429_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[("CHAT__LIMITS__USER_MAX_CONNECTIONS", "3")]).await;
    let first = join(&s, &jwt("ana", 1), "c").await;
    let _second = join(&s, &jwt("ana", 2), "c").await;
    let _third = join(&s, "named-ana", "c").await;
    // The fourth, whichever credential: 429 with Retry-After, at the upgrade.
    assert_eq!(upgrade(&s, &jwt("ana", 3)).await, (429, Some("5".into())));
    assert_eq!(upgrade(&s, "named-ana").await.0, 429);
    assert_eq!(
        s.metric("wschat_upgrade_rejections_total{reason=\"user_cap\"}")
            .await,
        2.0
    );
    // Another user and a guest are not affected.
    let _bo = join(&s, &jwt("bo", 1), "c").await;
    let _guest = join(&s, common::TOKEN, "c").await;
    // Closing one gives its place back once its session has ended.
    first.bye().await;
    let token = jwt("ana", 4);
    let mut again = eventually("a place for ana again", WAIT, async || {
        connect(&url_with(&s, &token, "room=c"), Some(ORIGIN)).await
    })
    .await;
    assert_eq!(again.next_of("system").await["user"], "ana");
    assert_eq!(upgrade(&s, &jwt("ana", 5)).await.0, 429, "full again");
    s.stop().await;
}

#[tokio::test]
async fn refused_users_do_not_hold_places() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &[
            ("CHAT__LIMITS__USER_MAX_CONNECTIONS", "1"),
            ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "3"),
        ],
    )
    .await;
    let _ana = join(&s, &jwt("ana", 1), "r").await;
    for n in 2..12 {
        assert_eq!(upgrade(&s, &jwt("ana", n)).await.0, 429);
    }
    // Ten refusals later the IP still has its two other places.
    let _bo = join(&s, &jwt("bo", 1), "r").await;
    let _guest = join(&s, common::TOKEN, "r").await;
    assert_eq!(
        s.metric("wschat_upgrade_rejections_total{reason=\"ip_cap\"}")
            .await,
        0.0
    );
    s.stop().await;
}
