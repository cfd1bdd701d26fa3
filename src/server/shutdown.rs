//! The drain: readiness off, upgrades refused (503), then every connection
//! closed with 1001, spread across the drain window so that clients do not
//! all reconnect to the other replicas in the same instant.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::app::App;
use crate::protocol::close::CloseCode;

/// How long sessions get after the last close request to finish their close
/// handshake before the process stops waiting for them.
const MARGIN: Duration = Duration::from_secs(2);

/// Runs the drain to the end; returns once every session finished or the
/// window plus a margin has passed.
pub async fn drain(app: &Arc<App>) {
    app.set_not_ready();
    app.draining.cancel();
    let window = app.settings.shutdown.drain_window;
    let started = Instant::now();
    let members = app.connections.all();
    tracing::info!(connections = members.len(), window = ?window, "draining");
    let n = members.len().max(1) as u32;
    for (i, member) in members.iter().enumerate() {
        tokio::time::sleep_until(started + window * i as u32 / n).await;
        member.outbox.request_close(CloseCode::GoingAway);
    }
    // Sessions that were joining when the drain began close themselves.
    app.tasks.close();
    let deadline = started + window + MARGIN;
    if tokio::time::timeout_at(deadline, app.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = app.tasks.len(),
            "drain window over; closing the rest"
        );
    }
}
