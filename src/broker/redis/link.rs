//! The connection to Redis and the tasks that keep it useful: up/down
//! tracking (readiness, `wschat_broker_up`, reconnect counting), the health
//! probe, and the presence refresh. Room subscriptions are in [`super::subs`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{PushInfo, PushKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::conn::Conn;
use super::receiver::Event;
use super::{members, script, Shared};
use crate::broker::{BrokerError, UserChanges};
use crate::metrics::Metrics;

/// How often a down broker checks whether Redis is back.
const PROBE_DOWN: Duration = Duration::from_millis(100);
/// How often an up broker checks that Redis still answers.
const PROBE_UP: Duration = Duration::from_secs(1);
/// A cluster that has not answered for this long is reconnected from its
/// seed nodes.
const RESET_AFTER: Duration = Duration::from_secs(3);
/// While Redis does not answer, why is logged at most this often.
const SAY_WHY_EVERY: Duration = Duration::from_secs(30);

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
            let _ = self.events.send(Event::Recovered);
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

    /// Hands a push to the receiver (every connection's push sender).
    pub(super) fn push(&self, info: PushInfo) -> Result<(), ()> {
        if info.kind == PushKind::Disconnection {
            // Before the receiver sees it: publishes fail fast from now on.
            self.set_down();
        }
        self.events.send(Event::Push(info)).map_err(|_| ())
    }
}

/// Probes Redis: fast while it is down, slowly while it is up. While it
/// does not answer, says why (a refused connection, a certificate nobody
/// vouches for, a wrong password): otherwise a server that never reached
/// Redis would only show a 503 on /readyz.
pub(super) async fn health(shared: Arc<Shared>, stop: CancellationToken) {
    let mut said: Option<Instant> = None;
    let mut down_since: Option<Instant> = None;
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
        let result = shared.call(shared.conn.ping()).await;
        down_since = match (&result, down_since) {
            (Ok(()), _) => None,
            (Err(_), None) => Some(Instant::now()),
            (Err(_), Some(at)) if at.elapsed() >= RESET_AFTER => {
                if let Conn::Cluster(lazy) = &shared.conn {
                    // redis-rs may keep a slot map that names a dead master
                    // (refreshed before the failover, then backing off): start
                    // over from the seed nodes. Subscriptions are made again
                    // on recovery (`Event::Recovered`).
                    tracing::warn!(
                        "redis cluster still unreachable; reconnecting from the seed nodes"
                    );
                    lazy.reset();
                }
                Some(Instant::now())
            }
            (Err(_), at) => at,
        };
        match result {
            Ok(()) => said = None,
            Err(e) if said.is_none_or(|at| at.elapsed() >= SAY_WHY_EVERY) => {
                said = Some(Instant::now());
                let why = why(&shared, e).await;
                tracing::warn!(error = %why, "redis does not answer; /readyz stays 503");
            }
            Err(_) => {}
        }
    }
}

/// Why Redis does not answer. The manager's own attempts keep their errors
/// to themselves: for one server, a fresh connection names the cause (a
/// cluster's or a Sentinel's error already names the node).
async fn why(shared: &Shared, e: BrokerError) -> String {
    let Some(client) = &shared.client else {
        return e.to_string();
    };
    let fresh = client.get_multiplexed_async_connection();
    match tokio::time::timeout(Duration::from_secs(2), fresh).await {
        Ok(Err(cause)) => format!("redis: {cause}"),
        Ok(Ok(_)) => e.to_string(),
        Err(_) => "redis: connecting took over 2 s".to_string(),
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
