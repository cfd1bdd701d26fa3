//! ws-chat: a WebSocket chat service. The data path reads in file order:
//! `http` (accept) → `gate` (upgrade decision) → `session` (one connection)
//! → `broker` (seq, history, replicas) → `rooms` (fan-out) → `outbox` (each
//! connection's queue). `main.rs` only parses arguments and wires signals.
#![deny(unsafe_code)]

pub mod api;
pub mod app;
pub mod auth;
pub(crate) mod broker;
pub mod config;
pub mod edge;
pub(crate) mod fanout;
pub(crate) mod limits;
pub(crate) mod metrics;
pub mod protocol;
pub(crate) mod server;
pub(crate) mod session;
pub mod smoke;
pub mod telemetry;
pub mod tls;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use app::{App, StartError};
pub use config::{Settings, SettingsError, Sources};

/// Loads the settings from `sources` and checks every section, including the
/// ones that auth and TLS parse themselves: what startup, `check-config` and
/// a reload all use.
pub fn load_settings(sources: &Sources) -> Result<Settings, SettingsError> {
    Settings::load(sources, |s| {
        let mut problems = auth::problems(s);
        problems.extend(tls::problems(&s.tls));
        problems.extend(api::problems(s));
        problems
    })
}

/// How the caller steers a running server: `main` wires these to signals,
/// tests trigger them directly.
#[derive(Clone, Default)]
pub struct Control {
    /// Cancel to start the drain; `run` returns when it is over.
    pub shutdown: CancellationToken,
    /// Notify to reload tokens and origins.
    pub reload: Arc<Notify>,
}

/// How often idle limiter entries and idle rooms' history are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Serves on the given listeners until `control.shutdown` is cancelled, then
/// drains and returns.
pub async fn run(
    public: TcpListener,
    admin: TcpListener,
    settings: Settings,
    sources: Sources,
    control: Control,
) -> Result<(), StartError> {
    let app = App::new(settings, sources)?;
    // JWT keys from a JWKS URL before the first connection (bounded by the
    // fetch timeout; on failure the server starts and keeps trying).
    let jwks_read = match app.auth.jwt.jwks_url() {
        Some(url) => Some((
            tokio::time::Instant::now(),
            server::jwks::refresh(&app, &url).await,
        )),
        None => None,
    };
    app.metrics.ready.set(1);
    tokio::spawn(edge::http::serve(
        public,
        app.clone(),
        edge::http::Listener::Public,
    ));
    tokio::spawn(edge::http::serve(
        admin,
        app.clone(),
        edge::http::Listener::Admin,
    ));
    tokio::spawn(server::reload::watch(app.clone(), control.reload.clone()));
    tokio::spawn(server::jwks::keep_fresh(app.clone(), jwks_read));
    tokio::spawn(prune(app.clone()));
    let requests = app.control.lock().ok().and_then(|mut c| c.take());
    if let Some(requests) = requests {
        tokio::spawn(session::control::run(app.clone(), requests));
    }
    {
        let app = app.clone();
        tokio::spawn(async move { app.deadlines.run(app.stopped.clone()).await });
    }
    tokio::spawn(server::heap::trim_after_churn(app.clone()));
    tokio::spawn(session::heartbeat::run(app.clone()));
    control.shutdown.cancelled().await;
    server::shutdown::drain(&app).await;
    app.stopped.cancel();
    Ok(())
}

async fn prune(app: Arc<App>) {
    use broker::Broker;
    loop {
        tokio::select! {
            () = tokio::time::sleep(PRUNE_EVERY) => {
                app.limits.prune();
                app.broker.prune();
            }
            () = app.stopped.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = load_settings(&Sources::from_env([
            ("CHAT__AUTH__TOKENS", ""),
            ("CHAT__SERVER__TRUSTED_PROXIES", "10.0.0.0/33"),
            ("CHAT__AUTH__ALLOWED_ORIGINS", "localhost:8080"),
            ("CHAT__ROOMS__PRESENCE_INTERVAL", "2s"),
            ("CHAT__AUTH__PAGE_TOKEN_URL", "https://id.example.com/token"),
        ]))
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("auth.tokens"), "{text}");
        assert!(text.contains("server.trusted_proxies"), "{text}");
        assert!(text.contains("auth.allowed_origins"), "{text}");
        assert!(text.contains("rooms.presence_max_interval"), "{text}");
        assert!(text.contains("auth.page_token_url"), "{text}");
    }
}
