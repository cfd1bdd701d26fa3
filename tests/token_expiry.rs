//! A token's end, end to end with real signed JWTs and a real client: the
//! `expiring` warning, the 4001 close within a second of `exp` with the
//! client silent, a `refresh` that extends the same socket, and the
//! refreshes that are refused (another user, a guest, a bad token) or take
//! the room away.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::jwt::{claims, now, secret_key, sign, start_with_config, url_with};
use common::{connect, Client, TestServer, ORIGIN, TOKEN};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

const SECRET: &[u8] = b"expiry-secret-expiry-secret-0123";

async fn server(dir: &std::path::Path) -> TestServer {
    let config = format!(
        "[auth]\nexpiry_warning = \"1s\"\n[auth.jwt]\nleeway = \"0s\"\n\
         [[auth.jwt.keys]]\nalg = \"HS256\"\nsecret = \"{}\"\n",
        std::str::from_utf8(SECRET).unwrap()
    );
    start_with_config(&dir.join("c.toml"), &config, &[]).await
}

/// A token for `sub` expiring `secs` from now, with `extra` claims.
fn token(sub: &str, exp: u64, extra: Value) -> String {
    let mut c = claims(sub);
    c["exp"] = json!(exp);
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    sign(Algorithm::HS256, None, &c, &secret_key(SECRET))
}

async fn joined(server: &TestServer, token: &str) -> Client {
    let mut c = connect(&url_with(server, token, "room=lobby"), Some(ORIGIN))
        .await
        .unwrap();
    c.next_of("history").await;
    c
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn refresh(token: &str) -> String {
    json!({ "type": "refresh", "token": token }).to_string()
}

#[tokio::test]
async fn a_silent_connection_is_warned_then_closed_within_a_second_of_exp() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let exp = now() + 3;
    let mut client = joined(&server, &token("ana", exp, json!({}))).await;
    let warning = client.next_of("expiring").await;
    let warned_at = SystemTime::now();
    assert_eq!(warning["expiresAt"], ws_chat::protocol::rfc3339(at(exp)));
    assert!(
        warned_at + Duration::from_millis(1100) >= at(exp),
        "warned about 1 s before exp"
    );
    assert_eq!(
        client.closed_within(Duration::from_secs(5)).await,
        Some(4001)
    );
    let late = SystemTime::now()
        .duration_since(at(exp))
        .unwrap_or_default();
    assert!(late < Duration::from_secs(1), "closed {late:?} after exp");
    drop(client); // the server need not wait for our close frame
    server
        .wait_for_metric(
            r#"wschat_connections_closed_total{code="4001"}"#,
            "= 1",
            |v| v == 1.0,
        )
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_refresh_extends_the_same_socket_and_moves_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    // `now()` is whole seconds: +3 leaves 2-3 s, so the refresh has at
    // least a second after `expiring` even on a loaded machine.
    let exp = now() + 3;
    let mut client = joined(&server, &token("ana", exp, json!({"name": "Ana"}))).await;
    client.next_of("expiring").await;
    let later = now() + 3600;
    client
        .send_text(&refresh(&token("ana", later, json!({"name": "Ana"}))))
        .await;
    let answer = client.next_of("refreshed").await;
    assert_eq!(answer["expiresAt"], ws_chat::protocol::rfc3339(at(later)));
    // Past the old end, the same socket still speaks, as the same user.
    while SystemTime::now() < at(exp) + Duration::from_millis(1500) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.say("still here").await;
    let m = client.next_message().await;
    assert_eq!(
        (m["text"].as_str(), m["user"].as_str()),
        (Some("still here"), Some("ana"))
    );
    assert_eq!(
        server
            .metric(r#"wschat_token_refreshes_total{outcome="refreshed"}"#)
            .await,
        1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn refused_refreshes_keep_the_old_token_and_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let exp = now() + 3;
    let mut client = joined(&server, &token("ana", exp, json!({}))).await;
    let later = now() + 3600;
    let other_secret = secret_key(b"not-the-configured-secret-at-all");
    let mut forged = claims("ana");
    forged["exp"] = json!(later);
    for bad in [
        token("bob", later, json!({})),                       // another user
        sign(Algorithm::HS256, None, &forged, &other_secret), // bad signature
        token("ana", now() - 10, json!({})),                  // already expired
        "not-a-token".to_string(),
    ] {
        client.send_text(&refresh(&bad)).await;
        let e = client.next_of("error").await;
        assert_eq!(e["code"], "bad_token");
        let text = e["message"].as_str().unwrap_or_default();
        assert!(!text.contains(&bad), "the token is never echoed");
    }
    client.send_text(r#"{"type":"refresh"}"#).await;
    assert_eq!(client.next_of("error").await["code"], "bad_token");
    // The connection is still usable, and still ends at the old exp.
    client.say("hi").await;
    assert_eq!(client.next_message().await["text"], "hi");
    assert_eq!(
        client.closed_within(Duration::from_secs(6)).await,
        Some(4001)
    );
    assert_eq!(
        server
            .metric(r#"wschat_token_refreshes_total{outcome="refused"}"#)
            .await,
        5.0
    );

    // A guest has no user to refresh.
    let mut guest = connect(&url_with(&server, TOKEN, ""), Some(ORIGIN))
        .await
        .unwrap();
    guest.next_of("history").await;
    guest
        .send_text(&refresh(&token("ana", later, json!({}))))
        .await;
    assert_eq!(guest.next_of("error").await["code"], "bad_token");
    server.stop().await;
}

#[tokio::test]
async fn a_refresh_that_no_longer_allows_the_room_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let later = now() + 3600;
    let mut client = joined(&server, &token("ana", later, json!({}))).await;
    let narrower = token("ana", later, json!({"rooms": ["support-*"]}));
    client.send_text(&refresh(&narrower)).await;
    assert!(client.next_of("refreshed").await["expiresAt"].is_string());
    let left = client.next_of("left").await;
    assert_eq!(
        (left["room"].as_str(), left["reason"].as_str()),
        (Some("lobby"), Some("forbidden"))
    );
    // The connection stays open in no room: it cannot send to the room it
    // lost, and may join one its new token allows.
    client.say("hi").await;
    assert_eq!(client.next_of("error").await["code"], "not_joined");
    client.send_text(r#"{"type":"join","room":"lobby"}"#).await;
    let refused = client.next_of("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["room"].as_str()),
        (Some("forbidden"), Some("lobby"))
    );
    client
        .send_text(r#"{"type":"join","room":"support-1"}"#)
        .await;
    assert_eq!(client.next_of("history").await["room"], "support-1");
    server.stop().await;
}
