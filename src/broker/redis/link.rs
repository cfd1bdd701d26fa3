//! The connection to Redis and the tasks that keep it useful: up/down
//! tracking (readiness, `wschat_broker_up`, reconnect counting), the health
//! probe, and the presence refresh. Room subscriptions are in [`super::subs`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::receiver::Event;
use super::{members, script, Shared};
use crate::broker::{BrokerError, BrokerSetupError, UserChanges};
use crate::config::{redact_url, BrokerSettings};
use crate::metrics::Metrics;

/// How often a down broker checks whether Redis is back.
const PROBE_DOWN: Duration = Duration::from_millis(100);
/// How often an up broker checks that Redis still answers.
const PROBE_UP: Duration = Duration::from_secs(1);
/// While Redis does not answer, why is logged at most this often.
const SAY_WHY_EVERY: Duration = Duration::from_secs(30);
/// Longest wait between reconnect attempts (keeps recovery under 2 s).
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Whether Redis answers, as last seen; the receiver is told about recoveries.
pub(super) struct Status {
    up: AtomicBool,
    ever_up: AtomicBool,
    metrics: Arc<Metrics>,
    pub(super) events: mpsc::UnboundedSender<Event>,
}

impl Status {
    pub(super) fn new(metrics: Arc<Metrics>, events: mpsc::UnboundedSender<Event>) -> Status {
        metrics.broker_up.set(0);
        Status {
            up: AtomicBool::new(false),
            ever_up: AtomicBool::new(false),
            metrics,
            events,
        }
    }

    /// Whether the last command or probe succeeded.
    pub(super) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Redis answered. After an outage this counts a reconnect and asks the
    /// receiver to backfill what pub/sub missed.
    pub(super) fn set_up(&self) {
        if self.up.swap(true, Ordering::AcqRel) {
            return;
        }
        self.metrics.broker_up.set(1);
        if self.ever_up.swap(true, Ordering::AcqRel) {
            self.metrics.broker_reconnects.inc();
            tracing::info!("redis is back; backfilling rooms");
            let _ = self.events.send(Event::Resync);
        } else {
            tracing::info!("redis connected");
        }
    }

    /// Redis did not answer or the connection dropped.
    pub(super) fn set_down(&self) {
        if self.up.swap(false, Ordering::AcqRel) {
            self.metrics.broker_up.set(0);
            tracing::warn!("redis unavailable");
        }
    }

    fn push(&self, info: PushInfo) -> Result<(), ()> {
        if info.kind == PushKind::Disconnection {
            // Before the receiver sees it: publishes fail fast from now on.
            self.set_down();
        }
        self.events.send(Event::Push(info)).map_err(|_| ())
    }
}

/// A lazily connecting RESP3 manager: retries forever with a short backoff,
/// resubscribes by itself, and hands pushes to the receiver. Also returns
/// its client.
pub(super) fn connect(
    settings: &BrokerSettings,
    status: Arc<Status>,
) -> Result<(redis::Client, ConnectionManager), BrokerSetupError> {
    let shown = redact_url(&settings.redis_url);
    let bad_url = |e: redis::RedisError| BrokerSetupError {
        key: "redis_url",
        reason: format!("`{shown}`: {e}"),
    };
    let info = settings
        .redis_url
        .as_str()
        .into_connection_info()
        .map_err(bad_url)?;
    let mut redis = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    if !settings.redis_password_file.is_empty() {
        let password = std::fs::read_to_string(&settings.redis_password_file).map_err(|e| {
            BrokerSetupError {
                key: "redis_password_file",
                reason: e.to_string(),
            }
        })?;
        // The password is never logged; only the file name is.
        redis = redis.set_password(password.trim_end_matches(['\r', '\n']));
    }
    let info = info.set_redis_settings(redis);
    let read = |key: &'static str, path: &str| {
        std::fs::read(path).map_err(|e| BrokerSetupError {
            key,
            reason: format!("{path}: {e}"),
        })
    };
    let root_cert = match settings.redis_ca_file.as_str() {
        "" => None,
        path => Some(read("redis_ca_file", path)?),
    };
    // Validation makes these come as a pair.
    let client_tls = match settings.redis_client_cert_file.as_str() {
        "" => None,
        path => Some(redis::ClientTlsConfig {
            client_cert: read("redis_client_cert_file", path)?,
            client_key: read("redis_client_key_file", &settings.redis_client_key_file)?,
        }),
    };
    let client = if root_cert.is_none() && client_tls.is_none() {
        redis::Client::open(info)
    } else {
        let certs = redis::TlsCertificates {
            client_tls,
            root_cert,
        };
        redis::Client::build_with_tls(info, certs)
    }
    .map_err(bad_url)?;
    let config = ConnectionManagerConfig::new()
        .set_push_sender(move |info| status.push(info))
        .set_automatic_resubscription()
        // The default (6 retries) gives up silently: the subscription is then
        // gone for good. Never give up; back off at most MAX_BACKOFF.
        .set_number_of_retries(usize::MAX)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(MAX_BACKOFF)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    let conn = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(bad_url)?;
    Ok((client, conn))
}

/// Probes Redis: fast while it is down, slowly while it is up. While it
/// does not answer, says why (a refused connection, a certificate nobody
/// vouches for, a wrong password): otherwise a server that never reached
/// Redis would only show a 503 on /readyz.
pub(super) async fn health(shared: Arc<Shared>, stop: CancellationToken) {
    let mut said: Option<Instant> = None;
    loop {
        let wait = if shared.status.is_up() {
            PROBE_UP
        } else {
            PROBE_DOWN
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let mut conn = shared.conn.clone();
        match shared
            .call(redis::cmd("PING").query_async::<String>(&mut conn))
            .await
        {
            Ok(_) => said = None,
            Err(e) if said.is_none_or(|at| at.elapsed() >= SAY_WHY_EVERY) => {
                said = Some(Instant::now());
                // The manager's own attempts keep their errors to themselves:
                // one fresh connection names the cause.
                let fresh = shared.client.get_multiplexed_async_connection();
                let why = match tokio::time::timeout(Duration::from_secs(2), fresh).await {
                    Ok(Err(cause)) => format!("redis: {cause}"),
                    Ok(Ok(_)) => e.to_string(),
                    Err(_) => "redis: connecting took over 2 s".to_string(),
                };
                tracing::warn!(error = %why, "redis does not answer; /readyz stays 503");
            }
            Err(_) => {}
        }
    }
}

/// Sets this replica's count and identified users in `room` and publishes
/// `events`, in one script call.
pub(super) async fn set_presence(
    shared: &Shared,
    room: &str,
    local_online: usize,
    users: &UserChanges,
    events: &[String],
) -> Result<(), BrokerError> {
    let mut inv = shared.scripts.presence.prepare_invoke();
    inv.key(script::online_key(room))
        .key(members::members_key(room, &shared.replica))
        .arg(&shared.replica)
        .arg(local_online)
        .arg(shared.limits.presence_ttl.as_millis() as u64)
        .arg(script::channel(room))
        .arg(""); // trace
    members::user_args(&mut inv, users);
    for text in events {
        inv.arg(text);
    }
    let mut conn = shared.conn.clone();
    let _online: u64 = shared.call(inv.invoke_async(&mut conn)).await?;
    Ok(())
}

/// Renews this replica's counts and member hashes every third of the
/// presence TTL, so they expire only when the replica is gone. Each refresh
/// sends a room's full list of identified users: a change lost with a
/// failed call, or overtaken by a later one, or wiped by a Redis restart,
/// is repaired within a third of the TTL.
pub(super) async fn refresh_presence(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.limits.presence_ttl / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if !shared.status.is_up() {
            continue;
        }
        for room in shared.subs.ready() {
            let (local, users) = shared.rooms.get(&room).map_or_else(
                || (0, UserChanges::Full(Vec::new())),
                |r| (r.local_online(), r.take_users(true)),
            );
            if let Err(e) = set_presence(&shared, &room, local, &users, &[]).await {
                shared
                    .metrics
                    .broker_error(crate::metrics::BrokerOp::Presence);
                tracing::debug!(error = %e, "presence refresh failed");
                break;
            }
        }
    }
}
