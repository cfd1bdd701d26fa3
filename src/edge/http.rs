//! The HTTP front: the public listener (the page, `/healthz`, the `/chat`
//! upgrade) and the admin listener (`/metrics`, `/healthz`, `/readyz`, and
//! the server API under `/api/`, see [`crate::api`]).
//!
//! Before it upgrades, a public connection holds a slot under the HTTP caps
//! (`server.max_http_connections`, `server.ip_max_http_connections`), taken
//! at accept; over either, the connection is closed before a byte is read.
//! The slot is given back when hyper hands the upgraded socket over, and the
//! session holds its place under the WebSocket caps from then on. Both
//! listeners cap the request head at `server.max_header_bytes` (431). The
//! admin listener has no connection caps: it is not exposed through the
//! Ingress, and a flood of the public port must not fail the probes there.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::app::App;
use crate::edge::{address, gate};
use crate::limits::{HttpCaps, HttpSlot};
use crate::metrics::HttpRefusal;
use crate::session;
use crate::telemetry::spans;

type Reply = Response<Full<Bytes>>;

const INDEX_HTML: &str = include_str!("../client/index.html");
const APP_JS: &str = include_str!("../client/app.js");
const STRINGS_JS: &str = include_str!("../client/strings.js");
const ROOMS_JS: &str = include_str!("../client/rooms.js");
const APP_CSS: &str = include_str!("../client/app.css");

/// The page may load only its own script and style, and talk only to its own origin.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Which listener a connection came in on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Public,
    Admin,
}

/// Accepts connections until the server stops.
pub async fn serve(listener: TcpListener, app: Arc<App>, which: Listener) {
    let server = &app.settings.server;
    let caps = (which == Listener::Public).then(|| {
        HttpCaps::new(
            server.max_http_connections,
            server.ip_max_http_connections,
            app.metrics.edge.http_connections.clone(),
        )
    });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = app.stopped.cancelled() => return,
        };
        let slot = match &caps {
            Some(caps) => match http_slot(&app, caps, peer) {
                Ok(slot) => Some(slot),
                Err(reason) => {
                    app.metrics.edge.http_refused(reason);
                    tracing::debug!(reason = reason.as_str(), "connection refused at accept");
                    continue; // dropping the stream closes it
                }
            },
            None => None,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, peer, app.clone(), which, slot));
    }
}

/// A slot under the HTTP caps for a connection from `peer`. A trusted proxy
/// carries many clients' connections, and which client a request is for is
/// known only once its headers are read: it counts only against the total.
fn http_slot(app: &App, caps: &HttpCaps, peer: SocketAddr) -> Result<HttpSlot, HttpRefusal> {
    let ip = peer.ip().to_canonical();
    let key = (!address::is_trusted(&app.trusted_proxies, ip)).then(|| app.limits.key(ip));
    caps.try_open(key)
}

/// Serves one accepted connection; `_slot` (public listener) is held until
/// the connection closes or upgrades, when hyper's connection future ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    which: Listener,
    _slot: Option<HttpSlot>,
) {
    let tls = match (&app.tls, which) {
        (Some(tls), Listener::Public) => Some(tls.acceptor.clone()),
        _ => None,
    };
    match tls {
        None => serve_http(TokioIo::new(stream), peer, app, which).await,
        Some(acceptor) => {
            // The handshake counts against the header timeout: no slow TLS either.
            let timeout = app.settings.server.header_read_timeout;
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => serve_http(TokioIo::new(tls_stream), peer, app, which).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "tls handshake failed"),
                Err(_) => tracing::debug!("tls handshake timed out"),
            }
        }
    }
}

async fn serve_http<I>(io: I, peer: SocketAddr, app: Arc<App>, which: Listener)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let timeout = app.settings.server.header_read_timeout;
    let svc_app = app.clone();
    let service = service_fn(move |req| {
        let app = svc_app.clone();
        async move {
            Ok::<_, Infallible>(match which {
                Listener::Public => public(app, peer, req),
                Listener::Admin if crate::api::owns(req.uri().path()) => {
                    crate::api::handle(app, req).await
                }
                Listener::Admin => admin(&app, &req),
            })
        }
    });
    // The head cap is both hyper's head limit and its read buffer, so a
    // client sending headers can make it hold no more than this. Past it
    // hyper answers 431 itself and closes the connection. (Validated to at
    // least 8 KiB; hyper panics below that, so never pass it less.)
    let max_head = app.settings.server.max_header_bytes.max(8192);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .max_header_size(max_head)
        .max_buf_size(max_head);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                if e.is_parse_too_large() {
                    app.metrics.edge.http_refused(HttpRefusal::HeaderTooLarge);
                }
                tracing::debug!(error = %e, "http connection ended");
            }
        }
        () = app.stopped.cancelled() => conn.as_mut().graceful_shutdown(),
    }
}

fn public(app: Arc<App>, peer: SocketAddr, mut req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    if path == "/chat" || fastwebsockets::upgrade::is_upgrade_request(&req) {
        return upgrade(app, peer, &mut req);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    match path {
        "/" | "/index.html" => {
            let mut r = asset(INDEX_HTML, "text/html; charset=utf-8");
            r.headers_mut().insert(
                "content-security-policy",
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            r
        }
        "/app.js" => asset(APP_JS, "text/javascript; charset=utf-8"),
        // ES modules that app.js imports (same origin: `script-src 'self'`).
        "/strings.js" => asset(STRINGS_JS, "text/javascript; charset=utf-8"),
        "/rooms.js" => asset(ROOMS_JS, "text/javascript; charset=utf-8"),
        "/app.css" => asset(APP_CSS, "text/css; charset=utf-8"),
        // The page's settings (where it fetches a fresh token): public, no secret.
        "/page-config.json" => {
            let body = Bytes::from(app.auth.page().json().to_owned());
            no_cache(with_type(
                Response::new(Full::new(body)),
                "application/json",
            ))
        }
        "/healthz" => {
            let body = format!(
                r#"{{"ok":true,"clients":{}}}"#,
                app.metrics.connections.get()
            );
            with_type(
                Response::new(Full::new(Bytes::from(body))),
                "application/json",
            )
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn upgrade(app: Arc<App>, peer: SocketAddr, req: &mut Request<Incoming>) -> Reply {
    // Never the URI: the query string may carry the token.
    let span = spans::upgrade_span();
    let _entered = span.enter();
    let admission = match gate::check(&app, req, peer) {
        Ok(admission) => admission,
        Err(rejection) => {
            let reason = rejection.reason.as_str();
            spans::upgrade_outcome(&span, false, Some(reason), rejection.status.as_u16());
            app.metrics.edge.rejected_upgrade(rejection.reason);
            tracing::debug!(
                status = rejection.status.as_u16(),
                reason,
                "upgrade refused"
            );
            let mut r = text(rejection.status, rejection.message);
            if let Some(secs) = rejection.retry_after {
                r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            if rejection.status == StatusCode::UPGRADE_REQUIRED {
                r.headers_mut()
                    .insert("sec-websocket-version", HeaderValue::from_static("13"));
            }
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let (mut response, upgrading) = match fastwebsockets::upgrade::upgrade(&mut *req) {
        Ok(pair) => pair,
        Err(_) => {
            spans::upgrade_outcome(&span, false, Some("bad_request"), 400);
            return text(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade");
        }
    };
    if admission.subprotocol {
        // Never the token subprotocol: only the protocol version.
        response.headers_mut().insert(
            hyper::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(crate::edge::credentials::SUBPROTOCOL),
        );
    }
    spans::upgrade_outcome(&span, true, None, response.status().as_u16());
    let tasks = app.tasks.clone();
    tasks.spawn(async move {
        let ws = match upgrading.await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        // Take the TCP stream (and TLS state) back: the session does its own
        // framing. It runs as a task of its own, so this one, which holds the
        // handshake's state, ends now instead of living as long as the
        // connection (it was 4.3 KB of every idle connection).
        let upgraded = ws.into_inner().into_inner();
        let tasks = app.tasks.clone();
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let stream = parts.io.into_inner();
                tasks.spawn(session::run(app, stream, None, parts.read_buf, admission));
                return;
            }
            Err(upgraded) => upgraded,
        };
        match upgraded.downcast::<TokioIo<tokio_rustls::server::TlsStream<TcpStream>>>() {
            Ok(parts) => {
                let (tcp, tls) = parts.io.into_inner().into_inner();
                tasks.spawn(session::run(
                    app,
                    tcp,
                    Some(Box::new(tls)),
                    parts.read_buf,
                    admission,
                ));
            }
            Err(_) => tracing::error!("upgraded connection is neither TCP nor TLS over TCP"),
        }
    });
    response.map(|_| Full::new(Bytes::new()))
}

fn admin(app: &App, req: &Request<Incoming>) -> Reply {
    match req.uri().path() {
        "/metrics" => with_type(
            Response::new(Full::new(Bytes::from(app.metrics.render()))),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" if app.is_ready() => text(StatusCode::OK, "ready"),
        "/readyz" => {
            let why = if app.is_draining() {
                "draining"
            } else {
                "broker unavailable"
            };
            text(StatusCode::SERVICE_UNAVAILABLE, why)
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Reply {
    no_cache(with_type(
        Response::new(Full::new(Bytes::from_static(body.as_bytes()))),
        content_type,
    ))
}

/// What the page's own files carry: revalidated on every load (a new build
/// or a reloaded setting shows at once), and no referrer.
fn no_cache(mut r: Reply) -> Reply {
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut r = with_type(
        Response::new(Full::new(Bytes::from_static(body.as_bytes()))),
        "text/plain; charset=utf-8",
    );
    *r.status_mut() = status;
    r
}

fn with_type(mut r: Reply, content_type: &'static str) -> Reply {
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// GETs `url` (plain http) and returns the status: the `healthcheck` command.
pub async fn probe(url: &str, timeout: std::time::Duration) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    let host = uri.host().ok_or("url has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let attempt = async {
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = Request::get(uri.path())
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        Ok::<u16, String>(resp.status().as_u16())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no answer from {url} within {timeout:?}"))?
}
