//! Hot reload of tokens, JWT keys, server API keys, allowed origins, the page's token URL and
//! the TLS certificate: on SIGHUP (forwarded by `main`) and when the config
//! file, tokens file, a JWT key file, an API key file or the JWKS file changes. A token (or a
//! JWT's key) that is gone, or no longer allows its room, closes its
//! connections with 1008.
//!
//! Files are polled (contents, every 500 ms) rather than watched with
//! inotify: a Kubernetes Secret update swaps a symlink, which inotify on the
//! file itself misses, and a small read twice a second costs nothing. The
//! files polled are the ones the last good settings name, so a reload that
//! points `auth.tokens_file` (or the TLS files) elsewhere watches the new ones.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::app::App;
use crate::auth::Lapsed;
use crate::config::Settings;
use crate::metrics::LeaveReason;
use crate::protocol::close::CloseCode;
use crate::session::membership;

const POLL: Duration = Duration::from_millis(500);

/// Reloads on `trigger` or when a watched file changes, until the server stops.
pub async fn watch(app: Arc<App>, trigger: Arc<Notify>) {
    let mut paths = watched(&app, &app.settings);
    let mut seen = fingerprint(&paths);
    loop {
        tokio::select! {
            () = trigger.notified() => {}
            () = tokio::time::sleep(POLL) => {
                if fingerprint(&paths) == seen {
                    continue;
                }
            }
            () = app.stopped.cancelled() => return,
        }
        // Taken before reloading: a file caught half-written fails this
        // reload, and its completed contents then differ and reload again
        // (taken after, they would look already seen and never apply).
        seen = fingerprint(&paths);
        if let Some(settings) = reload(&app) {
            let now = watched(&app, &settings);
            if now != paths {
                seen = carried(&paths, seen, &now);
                paths = now;
            }
        }
    }
}

/// The files `settings` name that a change should reload.
fn watched(app: &App, settings: &Settings) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(file) = &app.sources.config_file {
        paths.push(file.clone());
    }
    if !settings.auth.tokens_file.is_empty() {
        paths.push(settings.auth.tokens_file.clone().into());
    }
    let jwt = &settings.auth.jwt;
    for key in &jwt.keys {
        for file in [&key.secret_file, &key.public_key_file] {
            if !file.is_empty() {
                paths.push(file.clone().into());
            }
        }
    }
    if !jwt.jwks_file.is_empty() {
        paths.push(jwt.jwks_file.clone().into());
    }
    for key in &settings.api.keys {
        if !key.key_file.is_empty() {
            paths.push(key.key_file.clone().into());
        }
    }
    if app.tls.is_some() {
        paths.push(settings.tls.cert_file.clone().into());
        paths.push(settings.tls.key_file.clone().into());
    }
    paths
}

/// The fingerprint of `now` from the one of `before` taken before a reload:
/// a file still watched keeps what was read then, a newly watched one reads
/// as empty. Reading them again after the reload would miss a write that
/// landed during it (an empty config file caught mid-write loads fine, and
/// its completed contents would then look already seen); this way such a
/// change, or a new file that is not empty, loads once more on the next poll.
fn carried(before: &[PathBuf], seen: Vec<Vec<u8>>, now: &[PathBuf]) -> Vec<Vec<u8>> {
    now.iter()
        .map(|p| {
            (before.iter().position(|q| q == p))
                .and_then(|i| seen.get(i).cloned())
                .unwrap_or_default()
        })
        .collect()
}

/// The contents of every watched file (missing files read as empty).
fn fingerprint(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

/// Why a reload was refused (the previous settings stay in force).
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error(transparent)]
    Settings(#[from] crate::SettingsError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error("{0}")]
    Api(String),
}

/// Loads the settings again and applies their tokens and origins; returns
/// them when they were applied.
pub fn reload(app: &Arc<App>) -> Option<Settings> {
    let result = crate::load_settings(&app.sources)
        .map_err(ReloadError::from)
        .and_then(|settings| {
            if let Some(tls) = &app.tls {
                tls.reload(&settings.tls)?;
            }
            app.auth.reload(&settings)?;
            app.api_keys
                .reload(&settings.api)
                .map_err(ReloadError::Api)?;
            Ok(settings)
        });
    match result {
        Ok(settings) => {
            app.metrics.reload(true);
            let revoked = revoke(app);
            tracing::info!(
                tokens = app.auth.tokens().len(),
                revoked,
                "settings reloaded"
            );
            Some(settings)
        }
        Err(e) => {
            app.metrics.reload(false);
            tracing::error!(error = %e, "reload failed; keeping the previous settings");
            None
        }
    }
}

/// Re-checks every connection against the auth in force now: after a
/// reload, and after a JWKS read that changed the keys. A connection whose
/// token (or JWT key) is gone is closed with 1008. One whose grant no longer
/// allows a room it is in leaves that room (`left`, `forbidden`) when it
/// speaks version 2; a version 1 connection, which knows no `left`, is
/// closed with 1008. An expired JWT is left to its own close (4001).
/// Returns how many connections were closed or lost a room.
pub(crate) fn revoke(app: &Arc<App>) -> usize {
    let mut revoked = 0;
    for m in app.connections.all() {
        let lost = app.auth.current(&m.credential(), |g| {
            let rooms = m.rooms().into_iter();
            rooms.filter(|r| !g.admits(r)).collect::<Vec<_>>()
        });
        match lost {
            Err(Lapsed::Expired) => continue,
            Ok(lost) if lost.is_empty() => continue,
            Ok(lost) if m.speaks_v2() => {
                let app2 = app.clone();
                app.tasks.spawn(async move {
                    for room in lost {
                        membership::leave(&app2, &m, &room, LeaveReason::Forbidden).await;
                    }
                });
            }
            Ok(_) | Err(Lapsed::Revoked) => m.outbox.request_close(CloseCode::Policy),
        }
        revoked += 1;
    }
    revoked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_file_keeps_what_was_read_before_and_a_new_one_reads_as_unseen() {
        let (config, old, new) = (
            PathBuf::from("chat.toml"),
            PathBuf::from("old.toml"),
            PathBuf::from("new.toml"),
        );
        let seen = vec![b"before".to_vec(), b"old tokens".to_vec()];
        let now = carried(&[config.clone(), old], seen, &[config, new]);
        assert_eq!(now, vec![b"before".to_vec(), Vec::new()]);
    }
}
