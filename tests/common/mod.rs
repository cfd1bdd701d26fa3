//! Test harness: real servers on real loopback sockets, a real WebSocket
//! client (tokio-tungstenite, not fastwebsockets), and the real binary for
//! tests about signals and exit codes.
#![allow(dead_code)]

pub mod api;
pub mod jwt;
pub mod otlp;
pub mod redis;
pub mod redis_cluster;
pub mod redis_sentinel;
pub mod storm;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_chat::{Control, Settings, Sources};

/// The token every test server accepts unless told otherwise.
pub const TOKEN: &str = "test-token";
/// The Origin every test server allows unless told otherwise.
pub const ORIGIN: &str = "http://localhost:8080";
/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// An in-process server on ephemeral loopback ports.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub control: Control,
    handle: Option<JoinHandle<()>>,
}

/// The test token and origin, a short drain, then `env` overrides (later
/// entries win): what every in-process test server starts from.
pub fn test_sources(env: &[(&str, &str)]) -> Sources {
    let mut vars = vec![
        ("CHAT_TOKEN".to_string(), TOKEN.to_string()),
        (
            "CHAT__AUTH__ALLOWED_ORIGINS".to_string(),
            ORIGIN.to_string(),
        ),
        (
            "CHAT__SHUTDOWN__DRAIN_WINDOW".to_string(),
            "200ms".to_string(),
        ),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Sources::from_env(vars)
}

impl TestServer {
    /// Starts a server with the test token and origin plus `env` overrides
    /// (settings as `CHAT__SECTION__KEY` variables; later entries win).
    pub async fn start(env: &[(&str, &str)]) -> TestServer {
        let sources = test_sources(env);
        let settings =
            ws_chat::load_settings(&sources).unwrap_or_else(|e| panic!("test settings: {e}"));
        Self::start_with(settings, sources).await
    }

    /// Starts a server from already loaded settings.
    pub async fn start_with(settings: Settings, sources: Sources) -> TestServer {
        let public = TcpListener::bind("127.0.0.1:0").await.expect("bind public");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let (addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let control = Control::default();
        let c = control.clone();
        let handle = tokio::spawn(async move {
            ws_chat::run(public, admin, settings, sources, c)
                .await
                .expect("server runs");
        });
        TestServer {
            addr,
            admin: admin_addr,
            control,
            handle: Some(handle),
        }
    }

    /// `ws://addr/chat?token=…&query`.
    pub fn url(&self, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "&" };
        format!("ws://{}/chat?token={TOKEN}{sep}{query}", self.addr)
    }

    /// Connects with the allowed Origin and reads `system` and `history`.
    pub async fn join(&self, query: &str) -> (Client, Value) {
        let mut c = self.connect(query).await;
        let system = c.next_of("system").await;
        assert!(system["clientId"].is_string(), "{system}");
        let history = c.next_of("history").await;
        (c, history)
    }

    /// Connects with the allowed Origin; panics if refused.
    pub async fn connect(&self, query: &str) -> Client {
        connect(&self.url(query), Some(ORIGIN))
            .await
            .unwrap_or_else(|s| panic!("refused with {s}"))
    }

    /// GETs a path on the admin listener; returns status and body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path).await
    }

    /// Current value of one series; panics if /metrics does not have it.
    /// See [`metric_at`].
    pub async fn metric(&self, series: &str) -> f64 {
        metric_at(self.admin, series).await
    }

    /// Polls one series until `done(value)`; returns that value. See
    /// [`wait_for_metric`].
    pub async fn wait_for_metric(
        &self,
        series: &str,
        want: &str,
        done: impl Fn(f64) -> bool,
    ) -> f64 {
        wait_for_metric(self.admin, series, want, done).await
    }

    /// Starts the drain and waits for the server to finish it.
    pub async fn stop(mut self) {
        self.control.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(15), h)
                .await
                .expect("server stops in time")
                .expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.control.shutdown.cancel();
    }
}

/// A WebSocket client connection.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Opens a WebSocket; `Err(status)` when the upgrade is refused.
pub async fn connect(url: &str, origin: Option<&str>) -> Result<Client, u16> {
    let mut req = url.into_client_request().expect("request");
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().expect("origin header"));
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req)).await {
        Ok(Ok((ws, _))) => Ok(Client { ws }),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => Err(resp.status().as_u16()),
        Ok(Err(e)) => panic!("connect failed: {e}"),
        Err(_) => panic!("connect timed out"),
    }
}

impl Client {
    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a chat message.
    pub async fn say(&mut self, text: &str) {
        self.send_text(&serde_json::json!({"type": "message", "text": text}).to_string())
            .await;
    }

    /// The next JSON event; panics on close or timeout.
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("an event within the wait")
                .expect("connection open")
                .expect("a frame");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON event"),
                Message::Close(c) => panic!("closed while waiting for an event: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next event of `kind`, skipping others (presence noise and the like).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// The next `message` event's message.
    pub async fn next_message(&mut self) -> Value {
        self.next_of("message").await["message"].clone()
    }

    /// Reads until the server closes; returns its close code (None: no frame).
    pub async fn closed(&mut self) -> Option<u16> {
        self.closed_within(WAIT).await
    }

    /// Like [`Client::closed`] with a custom wait.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("not closed within {wait:?}"),
                Ok(None) => return None,
                Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Waits for the server's close frame; returns its code and reason.
    pub async fn close_frame(&mut self) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("not closed within {WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Closes normally.
    pub async fn bye(mut self) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}

/// A minimal HTTP/1.1 GET; returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .await;
    (status, body)
}

/// Sends a raw request; returns status, raw headers, and body.
pub async fn http_request(addr: SocketAddr, request: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read to EOF, or only the head of a 101 (the socket then stays open).
    let _ = tokio::time::timeout(WAIT, async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
            if raw.starts_with(b"HTTP/1.1 101") && raw.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The value of `series` (metric name with its labels, exactly as the
/// exposition writes them, e.g. `wschat_drops_total{reason="queue_full"}`) in
/// a /metrics body; `None` when no line has that series.
pub fn series_value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("metric `{series}` has value {v:?}: {e}"))
        })
}

/// Why `series` is not in `body`: the series its metric does have, or
/// (when the metric itself is unknown) every metric name there is.
fn missing_series(body: &str, series: &str) -> String {
    let name = series.split('{').next().unwrap_or(series);
    let same_name: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s))
        .filter(|s| s.split('{').next() == Some(name))
        .collect();
    if same_name.is_empty() {
        let names: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        format!(
            "no metric `{name}` in /metrics (reading `{series}`); the metrics are: {}",
            names.join(", ")
        )
    } else {
        format!(
            "no series `{series}` in /metrics; `{name}` has: {}",
            same_name.join(", ")
        )
    }
}

/// Reads one series from the /metrics of the admin listener at `admin`.
/// Panics when the series is absent, naming it and what exists instead: a
/// typo or a renamed metric must fail the test, not read as 0.
pub async fn metric_at(admin: SocketAddr, series: &str) -> f64 {
    let (status, body) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics: {body}");
    series_value(&body, series).unwrap_or_else(|| panic!("{}", missing_series(&body, series)))
}

/// Polls one series at `admin` until `done(value)` holds, for at most
/// [`WAIT`]; returns that value. `want` says in words what `done` checks
/// (for the failure message, with the last value read).
pub async fn wait_for_metric(
    admin: SocketAddr,
    series: &str,
    want: &str,
    done: impl Fn(f64) -> bool,
) -> f64 {
    eventually(&format!("`{series}` {want}"), WAIT, async || {
        let v = metric_at(admin, series).await;
        if done(v) {
            Ok(v)
        } else {
            Err(v)
        }
    })
    .await
}

/// How often [`eventually`] asks again.
const POLL: Duration = Duration::from_millis(20);

/// Asks `probe` until it answers `Ok`, every 20 ms for at most `timeout`, and
/// returns that answer. `Err` carries what was seen instead; after `timeout`
/// this panics saying `what` it waited for and the last thing seen. The one
/// poll-until of the async tests: use it instead of a sleep and a check.
pub async fn eventually<T, E: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let started = tokio::time::Instant::now();
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(seen) if started.elapsed() >= timeout => panic!(
                "waited {:?} for {what}; last seen: {seen:?}",
                started.elapsed()
            ),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Polls `/readyz` on an admin address until it answers `status`; returns how
/// long that took. Panics after `within`.
pub async fn wait_readyz(admin: SocketAddr, status: u16, within: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    eventually(
        &format!("/readyz at {admin} to answer {status}"),
        within,
        async || match http_get(admin, "/readyz").await.0 {
            got if got == status => Ok(()),
            got => Err(got),
        },
    )
    .await;
    started.elapsed()
}

/// Reads a response head through its blank line, one byte at a time so that
/// nothing after it is taken; panics if it does not come within [`WAIT`].
pub async fn response_head(s: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(WAIT, async {
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&head).into_owned();
    assert!(read.is_ok(), "no response head within {WAIT:?}: {text:?}");
    text
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A TCP connection to `addr` from the loopback address `from` (any of
/// 127.0.0.0/8), to be a different client to the per-IP limits.
pub async fn tcp_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((from, 0))).expect("bind");
    socket.connect(addr).await.expect("connect")
}

/// Waits (bounded) until something listens on a loopback port. Blocking, not
/// [`eventually`]: [`Process::start`] is synchronous, and so are some tests.
pub fn wait_listening(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on port {port} after 10 s");
}

/// The `ws-chat` binary as a child process on free ports.
pub struct Process {
    pub child: Child,
    pub port: u16,
    pub admin_port: u16,
}

impl Process {
    /// Starts the binary with `env` (plus free ports and the test token and
    /// origin) and waits until it is ready.
    pub fn start(env: &[(&str, &str)], args: &[&str]) -> Process {
        Self::start_without(env, args, &[])
    }

    /// Like [`Process::start`], without the variables in `unset` (e.g.
    /// `CHAT_TOKEN`, to run with the built-in dev token).
    /// A port from [`free_port`] can be taken by another socket before the
    /// binary binds it; that start is tried again on new ports.
    pub fn start_without(env: &[(&str, &str)], args: &[&str], unset: &[&str]) -> Process {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut p = Self::spawn(env, args, unset);
            match p.wait_ready() {
                Ok(()) => return p,
                Err(why) if attempts < 3 && why.contains("in use") => continue,
                Err(why) => panic!("ws-chat did not start: {why}"),
            }
        }
    }

    fn spawn(env: &[(&str, &str)], args: &[&str], unset: &[&str]) -> Process {
        let (port, admin_port) = (free_port(), free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ws-chat"));
        cmd.args(args)
            .env_clear()
            .env("CHAT__SERVER__PORT", port.to_string())
            .env("CHAT__SERVER__ADMIN_PORT", admin_port.to_string())
            .env("CHAT__SERVER__HOST", "127.0.0.1")
            .env("CHAT__SERVER__ADMIN_HOST", "127.0.0.1")
            .env("CHAT_TOKEN", TOKEN)
            .env("CHAT__AUTH__ALLOWED_ORIGINS", ORIGIN)
            .env("CHAT__TELEMETRY__LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in unset {
            cmd.env_remove(k);
        }
        let child = cmd.spawn().expect("spawn ws-chat");
        Process {
            child,
            port,
            admin_port,
        }
    }

    /// Waits (10 s at most) until the admin port listens; when the binary
    /// exits first, says why with everything it printed.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut out = String::new();
                use std::io::Read;
                for pipe in [
                    self.child
                        .stdout
                        .take()
                        .map(|p| Box::new(p) as Box<dyn Read>),
                    self.child
                        .stderr
                        .take()
                        .map(|p| Box::new(p) as Box<dyn Read>),
                ]
                .into_iter()
                .flatten()
                {
                    let mut pipe = pipe;
                    let _ = pipe.read_to_string(&mut out);
                }
                return Err(format!("it exited ({status}):\n{out}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "nothing listens on port {} after 10 s",
            self.admin_port
        ))
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.admin_port))
    }

    pub fn url(&self, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "&" };
        format!(
            "ws://127.0.0.1:{}/chat?token={TOKEN}{sep}{query}",
            self.port
        )
    }

    /// Sends a signal by name (`TERM`, `HUP`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for exit (bounded); returns the exit code and everything printed.
    /// Blocking, like [`wait_listening`]: async callers use `spawn_blocking`.
    pub fn wait_exit(mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut out = String::new();
                use std::io::Read;
                if let Some(mut o) = self.child.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut out);
                }
                return (status.code(), out);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("ws-chat did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket spoken by hand over TCP, for frames no client library sends.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Upgrades `GET /chat?token=…&query` by hand; panics unless 101.
    pub async fn connect(addr: SocketAddr, query: &str) -> Raw {
        Raw::connect_with(addr, query, None).await
    }

    /// Like [`Raw::connect`], with a receive buffer of `rcvbuf` bytes (a
    /// small one makes a client that does not read fall behind quickly).
    pub async fn connect_with(addr: SocketAddr, query: &str, rcvbuf: Option<u32>) -> Raw {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).expect("rcvbuf");
        }
        let mut stream = socket.connect(addr).await.expect("connect");
        let req = format!(
            "GET /chat?token={TOKEN}&{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let end = loop {
            let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
                .await
                .expect("response")
                .expect("read");
            assert!(n > 0, "closed during handshake");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Raw {
            stream,
            buf: buf[end..].to_vec(),
        }
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends one masked client frame.
    pub async fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let bytes = ws_chat::ws::frame::client_frame(fin, opcode, payload, [7, 1, 9, 3]);
        self.write(&bytes).await;
    }

    /// The next server frame as (opcode, payload); None at EOF.
    pub async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 2 {
                let len = (self.buf[1] & 0x7F) as usize;
                let (len, at) = match len {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (n, 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let opcode = self.buf[0] & 0x0F;
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some((opcode, payload));
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("a frame in time")
            {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads frames until a close; returns its code (None: EOF without one).
    pub async fn close_code(&mut self) -> Option<u16> {
        while let Some((opcode, payload)) = self.read_frame().await {
            if opcode == 8 {
                return payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            }
        }
        None
    }
}
