//! JSON Web Tokens end to end: real keys (openssl), real signatures, a real
//! server and a real WebSocket client. Every algorithm, every refusal and
//! its metric reason, identity on the wire, rotation by `kid` and removal by
//! reload, and the token as a subprotocol (expiry and refresh: token_expiry.rs).

mod common;

use common::jwt::{
    claims, encoding_key, key_pair, now, secret_key, sign, start_with_config, url_with, write,
};
use common::{connect, http_request, ORIGIN, TOKEN, WAIT};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const HS256: &[u8] = b"0123456789abcdef0123456789abcdef";
const HS384: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef";
const HS512: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One key per algorithm, each with a kid named after it.
fn every_algorithm(dir: &std::path::Path) -> String {
    let mut config = format!(
        "[[auth.jwt.keys]]\nalg = \"HS256\"\nkid = \"HS256\"\nsecret = \"{}\"\n\
         [[auth.jwt.keys]]\nalg = \"HS384\"\nkid = \"HS384\"\nsecret_file = \"{}\"\n\
         [[auth.jwt.keys]]\nalg = \"HS512\"\nkid = \"HS512\"\nsecret = \"{}\"\n",
        std::str::from_utf8(HS256).unwrap(),
        write(dir, "hs384", [HS384, b"\n"].concat()),
        std::str::from_utf8(HS512).unwrap(),
    );
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
    ] {
        let a: Algorithm = alg.parse().unwrap();
        let pem = write(dir, &format!("{alg}.pem"), &key_pair(a).public_pem);
        config += &format!(
            "[[auth.jwt.keys]]\nalg = \"{alg}\"\nkid = \"{alg}\"\npublic_key_file = \"{pem}\"\n"
        );
    }
    config
}

fn key_for(alg: Algorithm) -> EncodingKey {
    let secret = match alg {
        Algorithm::HS384 => HS384,
        Algorithm::HS512 => HS512,
        _ => HS256,
    };
    encoding_key(alg, secret, None)
}

#[tokio::test]
async fn every_algorithm_is_accepted_and_identifies_its_user() {
    let dir = tempfile::tempdir().unwrap();
    let config = every_algorithm(dir.path());
    let server = start_with_config(&dir.path().join("c.toml"), &config, &[]).await;
    for alg in [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ] {
        let name = format!("{alg:?}");
        let mut c = claims(&format!("user-{name}"));
        c["name"] = json!(format!("Ana {name}"));
        let token = sign(alg, Some(&name), &c, &key_for(alg));
        let mut client = connect(&url_with(&server, &token, "name=ignored"), Some(ORIGIN))
            .await
            .unwrap_or_else(|s| panic!("{name}: refused with {s}"));
        let system = client.next_of("system").await;
        assert_eq!(system["user"], format!("user-{name}"), "{system}");
        assert_eq!(
            system["name"],
            format!("Ana {name}"),
            "the token's name wins"
        );
        assert_eq!(system["message"], format!("connected as Ana {name}"));
        let expires = system["expiresAt"].as_str().unwrap_or_default().to_string();
        assert!(expires.ends_with('Z') && expires.len() == 24, "{system}");
        client.say("hi").await;
        let m = client.next_message().await;
        assert_eq!(
            (m["user"].as_str(), m["from"].as_str()),
            (
                Some(&*format!("user-{name}")),
                Some(&*format!("Ana {name}"))
            )
        );
        client.bye().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn refused_tokens_get_401_and_say_why_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let rsa_pem = key_pair(Algorithm::RS256).public_pem.clone();
    let config = format!(
        "[auth.jwt]\naudience = [\"chat\"]\nissuer = [\"https://id.example\"]\n\
         [[auth.jwt.keys]]\nalg = \"RS256\"\nkid = \"rsa\"\npublic_key_file = \"{}\"\n\
         [[auth.jwt.keys]]\nalg = \"HS256\"\nkid = \"hs\"\nsecret = \"{}\"\n",
        write(dir.path(), "rsa.pem", &rsa_pem),
        std::str::from_utf8(HS256).unwrap(),
    );
    let server = start_with_config(&dir.path().join("c.toml"), &config, &[]).await;
    let good = || {
        let mut c = claims("u1");
        c["aud"] = json!("chat");
        c["iss"] = json!("https://id.example");
        c
    };
    let rsa = key_for(Algorithm::RS256);
    let hs = key_for(Algorithm::HS256);
    let with = |key: &str, value: serde_json::Value| {
        let mut c = good();
        c[key] = value;
        c
    };
    let b64 = |v: serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    // An HS256 token "signed" with the RSA public key as the secret, with
    // and without the RSA key's kid: there is no HMAC key holding that text.
    let confused = secret_key(&rsa_pem);
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(good())
    );
    let cases = [
        (none, "algorithm"),
        (
            sign(Algorithm::HS256, Some("rsa"), &good(), &confused),
            "algorithm",
        ),
        (
            sign(Algorithm::HS256, Some("hs"), &good(), &confused),
            "bad_signature",
        ),
        (
            sign(Algorithm::ES256, None, &good(), &key_for(Algorithm::ES256)),
            "algorithm",
        ),
        (
            sign(Algorithm::RS256, Some("nope"), &good(), &rsa),
            "unknown_kid",
        ),
        (
            sign(
                Algorithm::RS256,
                Some("rsa"),
                &with("exp", json!(now() - 60)),
                &rsa,
            ),
            "expired",
        ),
        (
            sign(
                Algorithm::RS256,
                Some("rsa"),
                &with("nbf", json!(now() + 600)),
                &rsa,
            ),
            "not_yet_valid",
        ),
        (
            sign(
                Algorithm::RS256,
                Some("rsa"),
                &with("aud", json!("other")),
                &rsa,
            ),
            "audience",
        ),
        (
            sign(
                Algorithm::RS256,
                Some("rsa"),
                &with("iss", json!("https://evil")),
                &rsa,
            ),
            "issuer",
        ),
        (
            sign(Algorithm::HS256, Some("hs"), &with("sub", json!("")), &hs),
            "claims",
        ),
        (
            sign(
                Algorithm::HS256,
                Some("hs"),
                &with("perm", json!(["root"])),
                &hs,
            ),
            "claims",
        ),
        ("bm90IGpzb24.e30.c2ln".to_string(), "malformed"),
        (
            format!("{}.e30.c2ln", b64(json!({"kid": "hs"}))),
            "malformed",
        ),
        (
            "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln".to_string(),
            "bad_signature",
        ),
    ];
    let rejected = server
        .metric(r#"wschat_upgrade_rejections_total{reason="token"}"#)
        .await;
    let mut expected = std::collections::HashMap::new();
    for (token, reason) in &cases {
        let status = connect(&url_with(&server, token, ""), Some(ORIGIN))
            .await
            .err();
        assert_eq!(status, Some(401), "{reason}: {token}");
        *expected.entry(*reason).or_insert(0.0) += 1.0;
    }
    for (reason, n) in expected {
        let got = server
            .metric(&format!(
                r#"wschat_jwt_failures_total{{reason="{reason}"}}"#
            ))
            .await;
        assert_eq!(got, n, "{reason}");
    }
    let now_rejected = server
        .metric(r#"wschat_upgrade_rejections_total{reason="token"}"#)
        .await;
    assert_eq!(now_rejected - rejected, cases.len() as f64);
    // A good token still gets in.
    let token = sign(Algorithm::RS256, Some("rsa"), &good(), &rsa);
    assert!(connect(&url_with(&server, &token, ""), Some(ORIGIN))
        .await
        .is_ok());
    server.stop().await;
}

#[tokio::test]
async fn guests_are_unchanged_and_named_static_tokens_carry_their_user() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write(
        dir.path(),
        "tokens.toml",
        "[[tokens]]\ntoken = \"named\"\nuser = \"u-7\"\nname = \"Bo\"\n\
         [[tokens]]\ntoken = \"dotted.static.token\"\n",
    );
    let config = format!(
        "[auth]\ntokens_file = \"{tokens}\"\n[[auth.jwt.keys]]\nalg = \"HS256\"\nsecret = \"{}\"\n",
        std::str::from_utf8(HS256).unwrap()
    );
    let server = start_with_config(&dir.path().join("c.toml"), &config, &[]).await;
    // A guest: exactly version 1's events.
    let mut guest = server.connect("name=ana").await;
    let raw = next_text(&mut guest).await;
    let client_id = serde_json::from_str::<serde_json::Value>(&raw).unwrap()["clientId"].clone();
    assert_eq!(
        raw,
        format!(r#"{{"clientId":{client_id},"message":"connected as ana","type":"system"}}"#)
    );
    guest.next_of("history").await;
    guest.say("hi").await;
    let m = guest.next_message().await;
    assert!(m.get("user").is_none(), "{m}");
    let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{m}");
    // A named static token: user and name, no expiry.
    let mut named = connect(&url_with(&server, "named", "name=zed"), Some(ORIGIN))
        .await
        .unwrap();
    let system = named.next_of("system").await;
    assert_eq!(
        (system["user"].as_str(), system["name"].as_str()),
        (Some("u-7"), Some("Bo"))
    );
    assert!(system.get("expiresAt").is_none(), "{system}");
    named.say("yo").await;
    let m = named.next_message().await;
    assert_eq!(
        (m["user"].as_str(), m["from"].as_str()),
        (Some("u-7"), Some("Bo"))
    );
    // A static token that looks like a JWT is still a static token.
    let mut dotted = connect(
        &url_with(&server, "dotted.static.token", "name=dot"),
        Some(ORIGIN),
    )
    .await
    .expect("a static token with two dots");
    assert!(dotted.next_of("system").await.get("user").is_none());
    server.stop().await;
}

async fn next_text(c: &mut common::Client) -> String {
    use futures_util::StreamExt;
    match tokio::time::timeout(WAIT, c.ws.next()).await {
        Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn rotation_by_kid_and_a_removed_secret_closes_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    let (old, new) = (
        b"old-secret-old-secret-old-secret",
        b"new-secret-new-secret-new-secret",
    );
    let key = |kid: &str, s: &[u8]| {
        format!(
            "[[auth.jwt.keys]]\nalg = \"HS256\"\nkid = \"{kid}\"\nsecret = \"{}\"\n",
            std::str::from_utf8(s).unwrap()
        )
    };
    let server = start_with_config(&file, &(key("old", old) + &key("new", new)), &[]).await;
    let old_token = sign(
        Algorithm::HS256,
        Some("old"),
        &claims("a"),
        &secret_key(old),
    );
    let new_token = sign(
        Algorithm::HS256,
        Some("new"),
        &claims("b"),
        &secret_key(new),
    );
    let mut on_old = connect(&url_with(&server, &old_token, ""), Some(ORIGIN))
        .await
        .unwrap();
    let mut on_new = connect(&url_with(&server, &new_token, ""), Some(ORIGIN))
        .await
        .unwrap();
    on_old.next_of("history").await;
    on_new.next_of("history").await;
    std::fs::write(&file, key("new", new)).unwrap();
    server.control.reload.notify_one();
    assert_eq!(on_old.closed().await, Some(1008));
    on_new.say("still here").await;
    assert_eq!(on_new.next_message().await["text"], "still here");
    assert_eq!(
        connect(&url_with(&server, &old_token, ""), Some(ORIGIN))
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        server
            .metric(r#"wschat_jwt_failures_total{reason="unknown_kid"}"#)
            .await,
        1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn the_token_as_a_subprotocol_is_accepted_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[auth.jwt.keys]]\nalg = \"HS256\"\nsecret = \"{}\"\n",
        std::str::from_utf8(HS256).unwrap()
    );
    let server = start_with_config(&dir.path().join("c.toml"), &config, &[]).await;
    let jwt = sign(
        Algorithm::HS256,
        None,
        &claims("sub-user"),
        &key_for(Algorithm::HS256),
    );
    let open = |protocols: Option<String>, bearer: Option<&str>, query: &str| {
        let mut req = format!("ws://{}/chat?{query}", server.addr)
            .into_client_request()
            .unwrap();
        let h = req.headers_mut();
        h.insert("origin", ORIGIN.parse().unwrap());
        if let Some(p) = protocols {
            h.insert("sec-websocket-protocol", p.parse().unwrap());
        }
        if let Some(b) = bearer {
            h.insert("authorization", format!("Bearer {b}").parse().unwrap());
        }
        async move {
            match tokio_tungstenite::connect_async(req).await {
                Ok((ws, resp)) => {
                    let chosen = resp
                        .headers()
                        .get("sec-websocket-protocol")
                        .map(|v| v.to_str().unwrap().to_string());
                    Ok((common::Client { ws }, chosen))
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
                Err(e) => panic!("{e}"),
            }
        }
    };
    for token in [jwt.as_str(), TOKEN] {
        let (mut c, chosen) = open(Some(format!("ws-chat.v2, ws-chat.token.{token}")), None, "")
            .await
            .unwrap_or_else(|s| panic!("refused with {s}"));
        assert_eq!(chosen.as_deref(), Some("ws-chat.v2"));
        c.next_of("history").await;
        c.bye().await;
    }
    // Authorization first, then the subprotocol, then ?token=.
    let bad = "not-a-token";
    let offer = |t: &str| Some(format!("ws-chat.v2, ws-chat.token.{t}"));
    assert!(open(offer(bad), Some(&jwt), &format!("token={bad}"))
        .await
        .is_ok());
    assert_eq!(
        open(offer(bad), None, &format!("token={jwt}")).await.err(),
        Some(401)
    );
    assert_eq!(
        open(None, Some(bad), &format!("token={jwt}")).await.err(),
        Some(401)
    );
    assert!(open(offer(&jwt), None, &format!("token={bad}"))
        .await
        .is_ok());
    // ws-chat.v2 alone is selected; the query token is used.
    let (_, chosen) = open(Some("ws-chat.v2".into()), None, &format!("token={jwt}"))
        .await
        .unwrap();
    assert_eq!(chosen.as_deref(), Some("ws-chat.v2"));
    // A token subprotocol without ws-chat.v2: 400, the token not looked at.
    let raw = |protocols: &str| {
        format!(
            "GET /chat?token={TOKEN} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\
             Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
        )
    };
    let (status, head, _) = http_request(server.addr, &raw(&format!("ws-chat.token.{jwt}"))).await;
    assert_eq!(status, 400, "{head}");
    assert!(!head.contains(&jwt));
    // Other subprotocols only: as in version 1, none is selected.
    let (status, head, _) = http_request(server.addr, &raw("graphql-ws")).await;
    assert_eq!(status, 101, "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
    // The token in the subprotocol is never echoed.
    let (status, head, _) = http_request(
        server.addr,
        &raw(&format!("ws-chat.v2, ws-chat.token.{jwt}")),
    )
    .await;
    assert_eq!(status, 101, "{head}");
    assert!(
        head.contains("ws-chat.v2") && !head.contains(&jwt),
        "{head}"
    );
    server.stop().await;
}

#[tokio::test]
async fn identified_messages_keep_their_user_through_redis_and_history() {
    let redis = common::redis::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[auth.jwt.keys]]\nalg = \"HS256\"\nsecret = \"{}\"\n",
        std::str::from_utf8(HS256).unwrap()
    );
    let url = redis.url();
    let env = [
        ("CHAT__BROKER__KIND", "redis"),
        ("CHAT__BROKER__REDIS_URL", url.as_str()),
    ];
    let server = start_with_config(&dir.path().join("c.toml"), &config, &env).await;
    let token = sign(
        Algorithm::HS256,
        None,
        &claims("u-redis"),
        &key_for(Algorithm::HS256),
    );
    let mut c = connect(&url_with(&server, &token, "room=r1"), Some(ORIGIN))
        .await
        .unwrap();
    c.next_of("history").await;
    c.say("via redis").await;
    let live = c.next_message().await;
    assert_eq!(
        (live["user"].as_str(), live["seq"].as_u64()),
        (Some("u-redis"), Some(1))
    );
    let (_, history) = server.join("room=r1").await;
    assert_eq!(history["messages"][0], live, "history holds the same JSON");
    server.stop().await;
}
