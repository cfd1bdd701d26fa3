//! JWKS end to end: a document served over real HTTP by the test itself
//! (rotation picked up on an unknown `kid`, rate-limited; a removed key
//! closes its connections; the URL going down leaves the last keys in use
//! with a warning), a JWKS file reloaded when it changes, and the text of
//! refused JWTs never reaching the log.

mod common;

use std::time::Duration;

use common::jwt::{
    claims, encoding_key, jwk, jwks, key_pair, other_key_pair, secret_key, sign, start_with_config,
    url_with, write, JwksServer,
};
use common::{connect, eventually, wait_for_metric, Process, ORIGIN, WAIT};
use jsonwebtoken::Algorithm;

#[tokio::test]
async fn a_jwks_url_is_read_again_on_an_unknown_kid_at_most_once_per_interval() {
    let k1 = encoding_key(Algorithm::ES256, b"", Some(key_pair(Algorithm::ES256)));
    let second = other_key_pair(Algorithm::ES256);
    let k2 = encoding_key(Algorithm::ES256, b"", Some(&second));
    let jwks_server = JwksServer::start(jwks(vec![jwk(Algorithm::ES256, "k1", &k1)])).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[auth.jwt]\njwks_url = \"{}\"\njwks_refresh = \"1h\"\njwks_min_refresh = \"2s\"\n",
        jwks_server.url
    );
    let server = start_with_config(&dir.path().join("c.toml"), &config, &[]).await;
    let on_k1 = sign(Algorithm::ES256, Some("k1"), &claims("a"), &k1);
    let mut first = connect(&url_with(&server, &on_k1, ""), Some(ORIGIN))
        .await
        .unwrap();
    first.next_of("history").await;
    assert_eq!(jwks_server.hits(), 1, "read once, before serving");

    // The issuer rotates: k2 is published. A token naming k2 is refused
    // once and asks for a read; a burst of them asks for one read only.
    jwks_server.set(jwks(vec![
        jwk(Algorithm::ES256, "k1", &k1),
        jwk(Algorithm::ES256, "k2", &k2),
    ]));
    let on_k2 = sign(Algorithm::ES256, Some("k2"), &claims("b"), &k2);
    for _ in 0..5 {
        let refused = connect(&url_with(&server, &on_k2, ""), Some(ORIGIN)).await;
        if refused.is_ok() {
            break;
        }
    }
    eventually("a token on the new kid to be accepted", WAIT, async || {
        connect(&url_with(&server, &on_k2, ""), Some(ORIGIN))
            .await
            .map(|_| ())
    })
    .await;
    assert_eq!(
        jwks_server.hits(),
        2,
        "five unknown kids within the interval: one read"
    );

    // k1 is withdrawn: the next read (asked for by another unknown kid,
    // after the interval) closes the connection that used it.
    jwks_server.set(jwks(vec![jwk(Algorithm::ES256, "k2", &k2)]));
    let unknown = sign(Algorithm::ES256, Some("k3"), &claims("c"), &k2);
    assert_eq!(
        connect(&url_with(&server, &unknown, ""), Some(ORIGIN))
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        first.closed_within(Duration::from_secs(5)).await,
        Some(1008)
    );
    assert_eq!(jwks_server.hits(), 3);
    assert_eq!(
        connect(&url_with(&server, &on_k1, ""), Some(ORIGIN))
            .await
            .err(),
        Some(401)
    );
    assert!(
        server
            .metric(r#"wschat_jwt_failures_total{reason="unknown_kid"}"#)
            .await
            >= 3.0
    );
    assert_eq!(
        server
            .metric(r#"wschat_jwks_fetches_total{outcome="success"}"#)
            .await,
        3.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_jwks_url_fails_the_last_keys_stay_in_use_with_a_warning() {
    let key = encoding_key(Algorithm::EdDSA, b"", Some(key_pair(Algorithm::EdDSA)));
    let jwks_server = JwksServer::start(jwks(vec![jwk(Algorithm::EdDSA, "ed", &key)])).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.toml",
        format!(
            "[auth.jwt]\njwks_url = \"{}\"\njwks_refresh = \"300ms\"\njwks_min_refresh = \"100ms\"\n",
            jwks_server.url
        ),
    );
    let p = Process::start(&[], &["--config", &config]);
    let token = sign(Algorithm::EdDSA, Some("ed"), &claims("u"), &key);
    let url = format!("ws://127.0.0.1:{}/chat?token={token}", p.port);
    assert!(connect(&url, Some(ORIGIN)).await.is_ok());
    jwks_server.stop();
    wait_for_metric(
        p.admin_addr(),
        r#"wschat_jwks_fetches_total{outcome="failure"}"#,
        ">= 2",
        |v| v >= 2.0,
    )
    .await;
    assert!(
        connect(&url, Some(ORIGIN)).await.is_ok(),
        "stale keys still verify"
    );
    assert_eq!(
        common::metric_at(p.admin_addr(), "wschat_jwks_keys").await,
        1.0
    );
    p.signal("TERM");
    let (code, out) = tokio::task::spawn_blocking(move || p.wait_exit(Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("JWKS read failed") && out.contains("stale"),
        "{out}"
    );
    assert!(
        out.contains("WARN") || out.contains("\"level\":\"WARN\""),
        "{out}"
    );
}

#[tokio::test]
async fn a_jwks_file_is_read_and_reloaded_when_it_changes() {
    let rsa = encoding_key(Algorithm::RS256, b"", None);
    let es = encoding_key(Algorithm::ES256, b"", None);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "jwks.json",
        jwks(vec![jwk(Algorithm::RS256, "r1", &rsa)]),
    );
    let config = format!("[auth.jwt]\njwks_file = \"{file}\"\n");
    let server = start_with_config(&dir.path().join("c.toml"), &config, &[]).await;
    let on_r1 = sign(Algorithm::RS256, Some("r1"), &claims("a"), &rsa);
    let mut client = connect(&url_with(&server, &on_r1, ""), Some(ORIGIN))
        .await
        .unwrap();
    client.next_of("history").await;
    std::fs::write(&file, jwks(vec![jwk(Algorithm::ES256, "e1", &es)])).unwrap();
    assert_eq!(client.closed().await, Some(1008), "its key left the file");
    let on_e1 = sign(Algorithm::ES256, Some("e1"), &claims("b"), &es);
    assert!(connect(&url_with(&server, &on_e1, ""), Some(ORIGIN))
        .await
        .is_ok());
    assert_eq!(
        connect(&url_with(&server, &on_r1, ""), Some(ORIGIN))
            .await
            .err(),
        Some(401)
    );
    server.stop().await;
}

#[tokio::test]
async fn refused_and_accepted_jwts_never_reach_the_log() {
    let secret = b"log-secret-log-secret-log-secret";
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.toml",
        format!(
            "[[auth.jwt.keys]]\nalg = \"HS256\"\nkid = \"k\"\nsecret = \"{}\"\n",
            std::str::from_utf8(secret).unwrap()
        ),
    );
    let p = Process::start(&[("RUST_LOG", "debug")], &["--config", &config]);
    let key = secret_key(secret);
    let wrong = secret_key(b"wrong-secret-wrong-secret-wrong!!");
    let mut expired = claims("x");
    expired["exp"] = serde_json::json!(common::jwt::now() - 3600);
    let good = sign(Algorithm::HS256, Some("k"), &claims("log-user"), &key);
    let tokens = [
        sign(Algorithm::HS256, Some("k"), &claims("y"), &wrong),
        sign(Algorithm::HS256, Some("k"), &expired, &key),
        sign(Algorithm::HS256, Some("zz"), &claims("z"), &key),
        good.clone(),
    ];
    for t in &tokens {
        let _ = connect(
            &format!("ws://127.0.0.1:{}/chat?token={t}", p.port),
            Some(ORIGIN),
        )
        .await;
    }
    let mut c = connect(
        &format!("ws://127.0.0.1:{}/chat?token={good}", p.port),
        Some(ORIGIN),
    )
    .await
    .unwrap();
    c.say("hello").await;
    c.next_message().await;
    c.bye().await;
    p.signal("TERM");
    let (_, out) = tokio::task::spawn_blocking(move || p.wait_exit(Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(out.contains("token refused"), "the debug log ran: {out}");
    for t in &tokens {
        for part in t.split('.') {
            assert!(!out.contains(part), "a token's part is in the log");
        }
    }
    assert!(!out.contains(std::str::from_utf8(secret).unwrap()));
}
