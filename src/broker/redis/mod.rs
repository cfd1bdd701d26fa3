//! The Redis broker: many replicas share `seq`, history, fan-out and presence
//! through one Redis.
//!
//! - A message is accepted by one Lua script (seq, log, TTL, publish; see
//!   [`script`] and [`publish`]). The publishing session awaits only that script; every
//!   replica, the publishing one included, delivers the message when it comes
//!   back on pub/sub.
//! - One task per process ([`receiver`]) reads pub/sub and is the only one
//!   that hands messages to [`Rooms`], so a room's deliveries go out in seq
//!   order. It drops duplicates by seq and backfills gaps from the log.
//! - A replica subscribes to a room's channel while it has local members
//!   ([`subs`]): every joiner waits until the room is subscribed and its
//!   baseline seq known, and one task serializes SUBSCRIBE/UNSUBSCRIBE.
//! - One RESP3 [`ConnectionManager`] carries commands and pub/sub. It retries
//!   forever and resubscribes by itself; every command has its own deadline,
//!   so a session never waits on a dead Redis for long.

mod conn;
mod connect;
mod control;
mod follow;
mod keys;
mod link;
mod members;
mod publish;
mod reads;
mod receiver;
mod rollback;
pub mod script;
mod subs;
mod track;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::RedisResult;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::broker::{
    Broker, BrokerError, BrokerSetupError, Control, ControlSender, Deleter, Deletion, History,
    Members, Publish, Published, RoomPage, Since, UserChanges,
};
use crate::config::{BrokerSettings, RoomSettings};
use crate::fanout::rooms::Rooms;
use crate::metrics::Metrics;

use conn::Conn;
use link::Status;
use receiver::Event;
use script::Scripts;
use subs::{SubCmd, Subs};

/// Every Redis command gets at most this long (including waiting for a
/// reconnect) before the operation fails as unavailable.
const OP_TIMEOUT: Duration = Duration::from_secs(1);

/// The broker's settings that matter at run time.
struct Limits {
    /// Each room's history size comes from its namespace.
    rooms: RoomSettings,
    history_ttl_ms: u64,
    presence_ttl: Duration,
}

/// What the broker's tasks share.
struct Shared {
    conn: Conn,
    /// One server's client, for a one-off connection that tells why Redis
    /// does not answer (the manager only retries).
    client: Option<redis::Client>,
    scripts: Scripts,
    status: Arc<Status>,
    rooms: Arc<Rooms>,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// This process's id in presence counts.
    replica: String,
    /// Rooms this replica subscribes to, and where each subscription stands.
    subs: Subs,
    /// Control requests to this replica's sessions, and answers awaited.
    control: control::Controls,
    /// Latest-history reads in flight, shared by the joiners of a room.
    reads: reads::Reads,
}

/// A room's history as read from the log, with each message's seq.
struct Read {
    epoch: Arc<str>,
    last_seq: u64,
    entries: Vec<(u64, Arc<str>)>,
}

impl Shared {
    /// Runs one Redis operation with the deadline; tracks up/down from the result.
    async fn call<T>(&self, op: impl Future<Output = RedisResult<T>>) -> Result<T, BrokerError> {
        match tokio::time::timeout(OP_TIMEOUT, op).await {
            Ok(Ok(v)) => {
                self.status.set_up();
                Ok(v)
            }
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_unrecoverable_error() || e.is_timeout() {
                    self.status.set_down();
                }
                Err(BrokerError::Redis(e))
            }
            Err(_) => {
                self.status.set_down();
                Err(BrokerError::Timeout)
            }
        }
    }

    /// Reads up to `count` messages after `since` (see the HISTORY script).
    async fn read(&self, room: &str, since: &Since, count: usize) -> Result<Read, BrokerError> {
        let mut inv = self.scripts.history.prepare_invoke();
        inv.key(script::meta_key(room))
            .key(script::log_key(room))
            .key(script::online_key(room))
            .arg(uuid::Uuid::new_v4().to_string())
            .arg(self.limits.presence_ttl.as_millis().max(1) as u64)
            .arg(since.seq.map(|s| s.to_string()).unwrap_or_default())
            .arg(since.epoch.as_deref().unwrap_or(""))
            .arg(count)
            .arg(
                (self.limits.rooms.policy(room))
                    .oldest_kept(SystemTime::now())
                    .unwrap_or_default(),
            );
        let mut conn = self.conn.clone();
        let values: Vec<redis::Value> = self.call(inv.invoke_async(&mut conn)).await?;
        parse_read(values).ok_or(BrokerError::Reply("history"))
    }
}

fn parse_read(values: Vec<redis::Value>) -> Option<Read> {
    let mut it = values.into_iter();
    let epoch: String = redis::from_redis_value(it.next()?).ok()?;
    let last_seq: u64 = redis::from_redis_value(it.next()?).ok()?;
    let mut entries = Vec::new();
    while let Some(id) = it.next() {
        let id: String = redis::from_redis_value(id).ok()?;
        let json: String = redis::from_redis_value(it.next()?).ok()?;
        entries.push((script::seq_of_id(&id)?, json.into()));
    }
    Some(Read {
        epoch: epoch.into(),
        last_seq,
        entries,
    })
}

/// History, seq, fan-out and presence shared by every replica through Redis.
pub struct RedisBroker {
    shared: Arc<Shared>,
    subs: mpsc::UnboundedSender<SubCmd>,
    /// Stops the background tasks when the broker goes away.
    _stop: DropGuard,
}

impl RedisBroker {
    /// Connects lazily (the broker reports not ready until Redis answers) and
    /// starts the receiver, subscription, health and presence-refresh tasks.
    /// Fails only on settings: a bad URL or an unreadable password file.
    pub fn new(
        settings: &BrokerSettings,
        room_settings: RoomSettings,
        rooms: Arc<Rooms>,
        metrics: Arc<Metrics>,
        control: ControlSender,
    ) -> Result<RedisBroker, BrokerSetupError> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let status = Arc::new(Status::new(metrics.clone(), events_tx));
        let made = connect::connect(settings, status.clone())?;
        let replica = uuid::Uuid::new_v4().to_string();
        let shared = Arc::new(Shared {
            scripts: Scripts::new(made.conn.sharded()),
            conn: made.conn,
            client: made.client,
            status,
            rooms,
            metrics,
            limits: Limits {
                rooms: room_settings,
                history_ttl_ms: settings.history_ttl.as_millis().max(1) as u64,
                presence_ttl: settings.presence_ttl,
            },
            replica: replica.clone(),
            subs: Subs::default(),
            control: control::Controls::new(control, &replica),
            reads: reads::Reads::default(),
        });
        let stop = CancellationToken::new();
        let (subs, subs_rx) = mpsc::unbounded_channel();
        tokio::spawn(receiver::run(shared.clone(), events_rx, stop.clone()));
        tokio::spawn(subs::run(shared.clone(), subs_rx, stop.clone()));
        tokio::spawn(link::health(shared.clone(), stop.clone()));
        tokio::spawn(link::refresh_presence(shared.clone(), stop.clone()));
        tokio::spawn(control::listen(shared.clone(), stop.clone()));
        if let Some(follower) = made.follower {
            tokio::spawn(follow::run(shared.clone(), follower, stop.clone()));
        }
        Ok(RedisBroker {
            shared,
            subs,
            _stop: stop.drop_guard(),
        })
    }
}

impl Broker for RedisBroker {
    async fn publish(&self, msg: Publish<'_>) -> Result<Published, BrokerError> {
        publish::accept(&self.shared, msg).await
    }

    async fn control(&self, control: Control) -> Result<u64, BrokerError> {
        control::request(&self.shared, control).await
    }

    async fn rooms(&self, limit: usize, after: Option<&str>) -> Result<RoomPage, BrokerError> {
        let s = &self.shared;
        if !s.status.is_up() {
            return Err(BrokerError::Down);
        }
        control::rooms(s, limit, after).await
    }

    async fn history(&self, room: &str, since: &Since) -> Result<History, BrokerError> {
        let s = &self.shared;
        let count = s.limits.rooms.policy(room).history;
        let read = if since.seq.is_none() && since.epoch.is_none() {
            reads::latest(s, room, count)
                .await
                .map_err(BrokerError::Shared)?
        } else {
            Arc::new(s.read(room, since, count).await?)
        };
        // Messages the history already holds may not have been delivered here
        // yet (their pushes can trail this reply). Wait until they are, so the
        // joiner, held pending until it is activated after `last_seq`, cannot
        // receive one of them twice. After the deadline, go on regardless.
        let (done, delivered) = oneshot::channel();
        let barrier = Event::Barrier {
            room: room.into(),
            epoch: read.epoch.clone(),
            seq: read.last_seq,
            done,
        };
        if s.status.events.send(barrier).is_ok() {
            let _ = tokio::time::timeout(OP_TIMEOUT, delivered).await;
        }
        Ok(History {
            epoch: read.epoch.clone(),
            last_seq: read.last_seq,
            messages: read.entries.iter().map(|(_, json)| json.clone()).collect(),
        })
    }

    async fn online(&self, room: &str) -> Result<u64, BrokerError> {
        let s = &self.shared;
        if !s.status.is_up() {
            return Err(BrokerError::Down);
        }
        let mut inv = s.scripts.online.prepare_invoke();
        inv.key(script::online_key(room)).arg(&s.replica);
        let mut conn = s.conn.clone();
        let (total, mine): (u64, u64) = s.call(inv.invoke_async(&mut conn)).await?;
        let here = s.rooms.get(room).map_or(0, |r| r.local_online()) as u64;
        Ok(total.saturating_sub(mine) + here)
    }

    async fn delete(&self, room: &str, id: &str, by: Deleter<'_>) -> Result<Deletion, BrokerError> {
        let s = &self.shared;
        if !s.status.is_up() {
            return Err(BrokerError::Down);
        }
        let mut inv = s.scripts.delete.prepare_invoke();
        inv.key(script::log_key(room))
            .arg(id)
            .arg(by.user.unwrap_or(""))
            .arg(if by.moderator { "1" } else { "0" })
            .arg(script::channel(room));
        let mut conn = s.conn.clone();
        let reply: Vec<String> = s.call(inv.invoke_async(&mut conn)).await?;
        match reply.as_slice() {
            [done, seq] if done == "deleted" => seq
                .parse()
                .map(|seq| Deletion::Deleted { seq })
                .map_err(|_| BrokerError::Reply("delete")),
            [refused] if refused == "forbidden" => Ok(Deletion::Forbidden),
            [missing] if missing == "not_found" => Ok(Deletion::NotFound),
            _ => Err(BrokerError::Reply("delete")),
        }
    }

    async fn presence(
        &self,
        room: &str,
        local_online: usize,
        users: UserChanges,
        events: Vec<String>,
    ) -> Result<(), BrokerError> {
        let s = &self.shared;
        if !s.status.is_up() {
            return Err(BrokerError::Down);
        }
        link::set_presence(s, room, local_online, &users, &events).await
    }

    async fn members(&self, room: &str) -> Result<Members, BrokerError> {
        let s = &self.shared;
        if !s.status.is_up() {
            return Err(BrokerError::Down);
        }
        members::read(s, room).await
    }

    async fn watch(&self, room: &str) -> Result<(), BrokerError> {
        subs::carry(&self.shared, &self.subs, room).await
    }

    fn unwatch(&self, room: &str) {
        let _ = self.subs.send(SubCmd::Unwatch(room.into()));
    }

    fn is_ready(&self) -> bool {
        self.shared.status.is_up()
    }

    fn prune(&self) {
        // Redis expires idle rooms itself (PEXPIRE in every script).
    }
}
