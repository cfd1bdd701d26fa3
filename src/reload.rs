//! Hot reload of tokens, allowed origins and the TLS certificate: on SIGHUP (forwarded by `main`)
//! and when the config or tokens file changes. A token that is gone, or no
//! longer allows its room, closes its connections with 1008.
//!
//! Files are polled (contents, every 500 ms) rather than watched with
//! inotify: a Kubernetes Secret update swaps a symlink, which inotify on the
//! file itself misses, and a small read twice a second costs nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::app::App;
use crate::close::CloseCode;
use crate::config::Settings;

const POLL: Duration = Duration::from_millis(500);

/// Reloads on `trigger` or when a watched file changes, until the server stops.
pub async fn watch(app: Arc<App>, trigger: Arc<Notify>) {
    let mut seen = fingerprint(&app);
    loop {
        tokio::select! {
            () = trigger.notified() => {}
            () = tokio::time::sleep(POLL) => {
                if fingerprint(&app) == seen {
                    continue;
                }
            }
            () = app.stopped.cancelled() => return,
        }
        reload(&app);
        seen = fingerprint(&app);
    }
}

/// The contents of every watched file (missing files read as empty).
fn fingerprint(app: &App) -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    if let Some(file) = &app.sources.config_file {
        paths.push(file.clone());
    }
    if !app.settings.auth.tokens_file.is_empty() {
        paths.push(app.settings.auth.tokens_file.clone().into());
    }
    if app.tls.is_some() {
        paths.push(app.settings.tls.cert_file.clone().into());
        paths.push(app.settings.tls.key_file.clone().into());
    }
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

/// Loads the settings again and applies their tokens and origins.
pub fn reload(app: &App) {
    let result = Settings::load(&app.sources)
        .map_err(|e| e.to_string())
        .and_then(|settings| {
            if let Some(tls) = &app.tls {
                tls.reload(&settings.tls)?;
            }
            app.auth.reload(&settings)
        });
    match result {
        Ok(()) => {
            app.metrics.reload(true);
            let revoked = revoke(app);
            tracing::info!(
                tokens = app.auth.tokens().len(),
                revoked,
                "settings reloaded"
            );
        }
        Err(e) => {
            app.metrics.reload(false);
            tracing::error!(error = %e, "reload failed; keeping the previous settings");
        }
    }
}

/// Closes (1008) every connection whose token no longer admits it.
fn revoke(app: &App) -> usize {
    let tokens = app.auth.tokens();
    let mut revoked = 0;
    app.rooms.for_each_member(|m| {
        if !tokens
            .grant_for(&m.token)
            .is_some_and(|g| g.allows_room(&m.room))
        {
            m.outbox.request_close(CloseCode::Policy);
            revoked += 1;
        }
    });
    revoked
}
