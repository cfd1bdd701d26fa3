//! A real HTTP client (hyper's, over a fresh TCP connection per call) for
//! the server API on the admin listener, and a config file with API keys.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::TestServer;
use tokio::net::TcpStream;

/// The key with every scope in [`config`].
pub const ALL: &str = "all-scopes-key-0123456789abcdef";
/// A key with only `read`.
pub const READER: &str = "read-only-key-0123456789abcdef";
/// A key with only `publish` (a second publisher, for idempotency scopes).
pub const PUBLISHER: &str = "publish-only-key-0123456789abcd";

/// A config file with three API keys (`ops`: all scopes, `reader`, `bot`).
pub fn config(dir: &Path) -> String {
    let path = dir.join("api.toml");
    std::fs::write(
        &path,
        format!(
            "[[api.keys]]\nname = \"ops\"\nscopes = [\"publish\", \"moderate\", \"read\"]\nkey = \"{ALL}\"\n\n\
             [[api.keys]]\nname = \"reader\"\nscopes = [\"read\"]\nkey = \"{READER}\"\n\n\
             [[api.keys]]\nname = \"bot\"\nscopes = [\"publish\"]\nkey = \"{PUBLISHER}\"\n"
        ),
    )
    .expect("write api config");
    path.to_string_lossy().into_owned()
}

/// An answer: status, headers, and the body as JSON (`Null` when empty or
/// not JSON) and as text.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

/// Sends one request. `key`: the bearer key (none: no header); `body` is
/// sent as `application/json` unless `content_type` says otherwise.
pub async fn call(
    admin: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Answer {
    call_with(admin, method, path, key, body, &[]).await
}

/// [`call`] with extra headers (a `content-type` among them replaces JSON).
pub async fn call_with(
    admin: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let stream = TcpStream::connect(admin).await.expect("connect admin");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("http handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", admin.to_string());
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if body.is_some() && !typed {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
        .expect("request");
    let resp = tokio::time::timeout(super::WAIT, sender.send_request(req))
        .await
        .expect("api answers in time")
        .expect("api response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Answer {
        status,
        headers,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// A tokens file with two identified users: `t-u1` (u1, Ana) and `t-u2`
/// (u2, Bo).
pub fn tokens(dir: &Path) -> String {
    let path = dir.join("tokens.toml");
    std::fs::write(
        &path,
        "[[tokens]]\ntoken = \"t-u1\"\nuser = \"u1\"\nname = \"Ana\"\n\n\
         [[tokens]]\ntoken = \"t-u2\"\nuser = \"u2\"\nname = \"Bo\"\n",
    )
    .expect("write tokens");
    path.to_string_lossy().into_owned()
}

/// An in-process server with the keys of [`config`], the users of
/// [`tokens`], and `extra` settings.
pub async fn server(dir: &Path, extra: &[(&str, &str)]) -> TestServer {
    let file = config(dir);
    let tokens = tokens(dir);
    let mut env = vec![("CHAT__AUTH__TOKENS_FILE", tokens.as_str())];
    env.extend_from_slice(extra);
    let mut sources = super::test_sources(&env);
    sources.config_file = Some(file.into());
    let settings = ws_chat::load_settings(&sources).expect("settings");
    TestServer::start_with(settings, sources).await
}

pub fn publish(text: &str) -> String {
    json!({ "text": text, "from": "build-bot", "user": "svc:ci" }).to_string()
}
