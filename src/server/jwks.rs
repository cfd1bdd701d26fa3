//! Keeps the keys of `auth.jwt.jwks_url` fresh: read before the server
//! accepts connections, then every `auth.jwt.jwks_refresh`, and when a token
//! names an unknown `kid` (at most once per `auth.jwt.jwks_min_refresh`, so
//! a stream of made-up kids costs one read per interval, not one per
//! token). A failed read keeps the keys read last (logged as stale) and is
//! retried after the minimum interval. A read that changes the keys runs
//! the revocation sweep: connections whose key is gone close with 1008.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::{sleep_until, Instant};

use crate::app::App;
use crate::auth::jwks::{self, fetch::printable};

/// Reads the JWKS URL until the server stops.
pub async fn keep_fresh(app: Arc<App>, mut last: Option<(Instant, bool)>) {
    let jwt = &app.settings.auth.jwt;
    loop {
        if app.auth.jwt.jwks_url().is_none() {
            // None configured (a reload may add one, and notifies).
            tokio::select! {
                () = app.auth.jwt.refresh_wanted.notified() => {}
                () = app.stopped.cancelled() => return,
            }
        } else {
            let due = match last {
                None => Instant::now(),
                Some((at, true)) => at + jwt.jwks_refresh,
                Some((at, false)) => at + jwt.jwks_min_refresh,
            };
            tokio::select! {
                () = sleep_until(due) => {}
                () = app.auth.jwt.refresh_wanted.notified() => {
                    // Asked for early: not before the minimum interval.
                    if let Some((at, _)) = last {
                        tokio::select! {
                            () = sleep_until(at + jwt.jwks_min_refresh) => {}
                            () = app.stopped.cancelled() => return,
                        }
                    }
                }
                () = app.stopped.cancelled() => return,
            }
        }
        let Some(url) = app.auth.jwt.jwks_url() else {
            continue;
        };
        let ok = refresh(&app, &url).await;
        last = Some((Instant::now(), ok));
    }
}

/// Reads `url` once and swaps its keys in; whether it worked.
pub async fn refresh(app: &Arc<App>, url: &str) -> bool {
    match jwks::fetch_keys(url).await {
        Ok((keys, skipped)) => {
            let count = keys.len();
            let changed = app.auth.jwt.set_remote(keys);
            let m = &app.metrics;
            m.jwt.fetch(true);
            m.jwt.jwks_keys.set(count as i64);
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
            m.jwt
                .jwks_last_success
                .set(now.map_or(0, |d| d.as_secs() as i64));
            if changed {
                let revoked = crate::server::reload::revoke(app);
                tracing::info!(url = %printable(url), keys = count, skipped, revoked, "JWKS keys updated");
            }
            true
        }
        Err(e) => {
            app.metrics.jwt.fetch(false);
            tracing::warn!(
                error = %e,
                keys = app.auth.jwt.remote_len(),
                "JWKS read failed; the keys read last stay in use (stale)"
            );
            false
        }
    }
}
