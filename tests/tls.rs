//! In-process TLS: wss:// and https:// with a certificate made in the test,
//! clients that verify it, TLS 1.2 and 1.3, and certificate reload.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{TestServer, ORIGIN, TOKEN, WAIT};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Writes a fresh self-signed certificate for `localhost`; returns its DER.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    made.cert.der().clone()
}

async fn tls(
    addr: std::net::SocketAddr,
    trust: &CertificateDer<'static>,
    tls12_only: bool,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

async fn wss(
    s: &TestServer,
    trust: &CertificateDer<'static>,
    tls12_only: bool,
) -> WebSocketStream<TlsStream<TcpStream>> {
    let stream = tls(s.addr, trust, tls12_only).await.expect("tls handshake");
    let mut req = format!(
        "wss://localhost:{}/chat?token={TOKEN}&room=tls",
        s.addr.port()
    )
    .into_client_request()
    .unwrap();
    req.headers_mut().insert("origin", ORIGIN.parse().unwrap());
    tokio_tungstenite::client_async(req, stream)
        .await
        .expect("upgrade over tls")
        .0
}

async fn next_of(ws: &mut WebSocketStream<TlsStream<TcpStream>>, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

async fn start(dir: &Path) -> TestServer {
    let cert = dir.join("cert.pem").to_str().unwrap().to_string();
    let key = dir.join("key.pem").to_str().unwrap().to_string();
    TestServer::start(&[
        ("CHAT__TLS__CERT_FILE", &cert),
        ("CHAT__TLS__KEY_FILE", &key),
        ("CHAT__LIMITS__MESSAGE_BURST", "100"),
    ])
    .await
}

#[tokio::test]
async fn wss_chat_works_over_tls_1_3_and_1_2_with_a_verified_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_cert(dir.path());
    let s = start(dir.path()).await;
    let mut a = wss(&s, &cert, false).await;
    let mut b = wss(&s, &cert, true).await;
    next_of(&mut a, "history").await;
    next_of(&mut b, "history").await;
    let big = "안녕 ".repeat(90); // several TLS records' worth across messages
    for i in 0..30 {
        let text = format!("{i} {big}");
        b.send(Message::text(
            serde_json::json!({"type": "message", "text": text}).to_string(),
        ))
        .await
        .unwrap();
    }
    for i in 0..30 {
        let m = next_of(&mut a, "message").await;
        assert!(m["message"]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{i} ")));
    }
    // A client that does not trust the certificate is refused by its own check.
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    assert!(tls(s.addr, &stranger.cert.der().clone(), false)
        .await
        .is_err());
    s.stop().await;
}

#[tokio::test]
async fn https_serves_the_page_and_plain_http_is_not_answered_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_cert(dir.path());
    let s = start(dir.path()).await;
    let mut stream = tls(s.addr, &cert, false).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut body))
        .await
        .unwrap()
        .ok();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.to_lowercase().contains("content-security-policy"));
    let (status, _, _) = common::http_request(s.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, 0, "no cleartext answer on a TLS listener");
    s.stop().await;
}

#[tokio::test]
async fn a_new_certificate_is_used_without_dropping_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let old = write_cert(dir.path());
    let s = start(dir.path()).await;
    let mut open = wss(&s, &old, false).await;
    next_of(&mut open, "history").await;
    let new = write_cert(dir.path());
    common::eventually(
        "new handshakes to use the new certificate (seen: handshake error)",
        WAIT,
        async || tls(s.addr, &new, false).await.map(|_| ()),
    )
    .await;
    open.send(Message::text(r#"{"type":"message","text":"still here"}"#))
        .await
        .unwrap();
    assert_eq!(
        next_of(&mut open, "message").await["message"]["text"],
        "still here"
    );
    s.stop().await;
}

#[test]
fn check_config_refuses_a_key_that_does_not_match_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        other.signing_key.serialize_pem(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ws-chat"))
        .arg("check-config")
        .env_clear()
        .env("CHAT__TLS__CERT_FILE", dir.path().join("cert.pem"))
        .env("CHAT__TLS__KEY_FILE", dir.path().join("key.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("does not belong"), "{text}");
}
