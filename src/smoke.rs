//! `ws-chat smoke`: connect, send one message, wait for it to come back.
//! What the chart's `helm test` runs against a release.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::header::{AUTHORIZATION, CONNECTION, HOST, ORIGIN, UPGRADE};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What to connect to.
pub struct SmokeOptions {
    pub url: String,
    pub token: String,
    pub origin: Option<String>,
    pub room: String,
    pub timeout: Duration,
}

struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut);
    }
}

/// Runs the smoke test; the error says why it failed (never the token).
pub async fn run(opts: &SmokeOptions) -> Result<String, String> {
    tokio::time::timeout(opts.timeout, attempt(opts))
        .await
        .map_err(|_| format!("no echo within {:?}", opts.timeout))?
}

async fn attempt(opts: &SmokeOptions) -> Result<String, String> {
    let base: Uri = opts.url.parse().map_err(|e| format!("bad --url: {e}"))?;
    if base.scheme_str() != Some("ws") {
        return Err("--url must be ws://host:port/chat".into());
    }
    let host = base.host().ok_or("--url has no host")?.to_string();
    let port = base.port_u16().unwrap_or(80);
    let path = format!("{}?room={}&name=smoke", base.path(), opts.room);
    let origin = opts
        .origin
        .clone()
        .unwrap_or_else(|| format!("http://{host}:{port}"));
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let req = Request::builder()
        .method("GET")
        .uri(path)
        .header(HOST, format!("{host}:{port}"))
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "sec-websocket-key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("sec-websocket-version", "13")
        .header(ORIGIN, origin)
        .header(AUTHORIZATION, format!("Bearer {}", opts.token))
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request: {e}"))?;
    let (ws, _) = fastwebsockets::handshake::client(&SpawnExecutor, req, stream)
        .await
        .map_err(|e| match e {
            fastwebsockets::WebSocketError::InvalidStatusCode(code) => {
                format!("upgrade refused with HTTP {code}{}", hint(code))
            }
            other => format!("handshake failed: {other}"),
        })?;
    let mut ws: FragmentCollector<TokioIo<hyper::upgrade::Upgraded>> = FragmentCollector::new(ws);
    let marker = format!("smoke {}", uuid::Uuid::new_v4());
    let body = serde_json::json!({"type": "message", "text": marker}).to_string();
    ws.write_frame(Frame::text(Payload::Borrowed(body.as_bytes())))
        .await
        .map_err(|e| format!("sending: {e}"))?;
    loop {
        let frame = ws.read_frame().await.map_err(|e| format!("reading: {e}"))?;
        match frame.opcode {
            OpCode::Text => {
                let event: serde_json::Value = serde_json::from_slice(&frame.payload)
                    .map_err(|e| format!("server sent bad JSON: {e}"))?;
                match event["type"].as_str() {
                    Some("message") if event["message"]["text"] == marker.as_str() => {
                        let _ = ws.write_frame(Frame::close(1000, b"done")).await;
                        return Ok(format!("echo received (seq {})", event["message"]["seq"]));
                    }
                    Some("error") => return Err(format!("server error: {}", event["code"])),
                    _ => {}
                }
            }
            OpCode::Close => {
                let code = frame
                    .payload
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]));
                return Err(format!("server closed the connection ({code:?})"));
            }
            _ => {}
        }
    }
}

fn hint(code: u16) -> &'static str {
    match code {
        401 => " (token missing, unknown, or not allowed in the room)",
        403 => " (Origin not allowed: pass --origin)",
        429 => " (per-IP limit)",
        503 => " (draining or at capacity)",
        _ => "",
    }
}
