//! ws-chat: a WebSocket chat service. The data path reads in file order:
//! `http` (accept) → `gate` (upgrade decision) → `session` (one connection)
//! → `broker` (seq, history, replicas) → `rooms` (fan-out) → `outbox` (each
//! connection's queue). `main.rs` only parses arguments and wires signals.
#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod broker;
pub mod close;
pub mod config;
pub mod frame;
pub mod gate;
pub mod heap;
pub mod http;
pub mod inbound;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod presence;
pub mod protocol;
pub mod reload;
pub mod rooms;
pub mod session;
pub mod shutdown;
pub mod smoke;
pub mod telemetry;
pub mod tls;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use app::App;
pub use config::{Settings, SettingsError, Sources};

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
) -> Result<(), SettingsError> {
    let app = App::new(settings, sources)?;
    app.metrics.ready.set(1);
    tokio::spawn(http::serve(public, app.clone(), http::Listener::Public));
    tokio::spawn(http::serve(admin, app.clone(), http::Listener::Admin));
    tokio::spawn(reload::watch(app.clone(), control.reload.clone()));
    tokio::spawn(prune(app.clone()));
    tokio::spawn(heap::trim_after_churn(app.clone()));
    control.shutdown.cancelled().await;
    shutdown::drain(&app).await;
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
