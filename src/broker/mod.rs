//! The broker: assigns `seq`, keeps history, and carries messages and
//! presence to every replica's rooms.
//!
//! `memory` is the embedded default (one process); `redis` shares everything
//! between replicas. Both deliver into the local [`Rooms`](crate::fanout::rooms::Rooms)
//! in `seq` order per room, and both pass one shared test suite.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

pub mod control;
pub mod memory;
pub mod redis;

pub use control::{Control, ControlRequest, ControlSender};

pub use memory::MemoryBroker;
pub use redis::RedisBroker;

/// Where a reconnecting client left off (parsed from the query string or a
/// `join`).
pub use crate::protocol::client::Since;

/// What `who` answers, and the user changes a presence update carries.
pub use crate::fanout::users::{Members, UserChanges};

/// A room's history as sent on join.
#[derive(Debug, Clone)]
pub struct History {
    /// This life of the room's history.
    pub epoch: Arc<str>,
    /// The room's latest `seq` when the history was read.
    pub last_seq: u64,
    /// Serialized messages, oldest first.
    pub messages: Vec<Arc<str>>,
}

/// A message to accept: what a client or a backend sends into a room.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    pub room: &'a str,
    /// The cleaned display name.
    pub from: &'a str,
    /// The identified sender (none for guests).
    pub user: Option<&'a str>,
    pub text: &'a str,
    /// When the server accepted it (for delivery latency).
    pub accepted_at: Instant,
    /// Accept it at most once for this scope within the window (an API
    /// publish's `idempotencyKey`).
    pub once: Option<Once>,
}

/// An idempotent publish: the same `scope` in the same room within
/// `window` gets the first answer and no second message.
#[derive(Debug, Clone, Copy)]
pub struct Once {
    /// SHA-256 of the API key's name and the caller's idempotency key.
    pub scope: [u8; 32],
    pub window: Duration,
}

/// An accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: String,
    pub seq: u64,
    pub epoch: Arc<str>,
    /// An earlier publish with the same [`Once`] scope: nothing new was sent.
    pub replayed: bool,
}

/// One page of the rooms that have members now, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPage {
    /// `(room, online)` sorted by room name.
    pub rooms: Vec<(Arc<str>, u64)>,
    /// The last room of this page when more may follow.
    pub next: Option<Arc<str>>,
}

/// Who asks to delete a message: allowed to the message's identified
/// author, and to moderators.
#[derive(Debug, Clone, Copy)]
pub struct Deleter<'a> {
    /// The asking connection's identified user (`None`: a guest).
    pub user: Option<&'a str>,
    /// Its grant has `moderate`.
    pub moderator: bool,
}

impl Deleter<'_> {
    /// Whether it may delete a message sent by `author` (`None`: a guest's).
    pub fn may_delete(&self, author: Option<&str>) -> bool {
        self.moderator || (self.user.is_some() && self.user == author)
    }
}

/// What became of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Gone from history; every member on every replica is told.
    Deleted { seq: u64 },
    /// Not in the room's history (never, or trimmed or deleted already).
    NotFound,
    /// In history, but neither its author's nor asked by a moderator.
    Forbidden,
}

/// A broker operation failed; the message or event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Redis is known to be unreachable; nothing was sent.
    #[error("redis is down")]
    Down,
    /// Redis answered with an error, or the connection broke.
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// Redis did not answer within the operation's deadline.
    #[error("redis: no answer in time")]
    Timeout,
    /// Redis answered, but not in the shape our script returns.
    #[error("redis: unexpected {0} reply")]
    Reply(&'static str),
    /// The broker is shutting down.
    #[error("broker stopped")]
    Stopped,
    /// The room's subscription on this replica failed (shared by every joiner
    /// that waited for that attempt); the next join tries again.
    #[error("room not carried here: {0}")]
    NotCarried(Arc<BrokerError>),
    /// A read shared by several joiners failed (the same error for each).
    #[error(transparent)]
    Shared(Arc<BrokerError>),
}

/// The broker could not be built from its settings (names the key; never a
/// password).
#[derive(Debug, thiserror::Error)]
#[error("broker.{key}: {reason}")]
pub struct BrokerSetupError {
    pub key: &'static str,
    pub reason: String,
}

/// What every broker does.
pub trait Broker: Send + Sync + 'static {
    /// Accepts a message: gives it the room's next `seq`, keeps it in history
    /// and delivers it to the room's members on every replica (unless it
    /// replays an earlier publish of the same [`Once`] scope).
    fn publish(
        &self,
        msg: Publish<'_>,
    ) -> impl Future<Output = Result<Published, BrokerError>> + Send;

    /// The room's history after `since` (all of it if the epoch differs).
    fn history(
        &self,
        room: &str,
        since: &Since,
    ) -> impl Future<Output = Result<History, BrokerError>> + Send;

    /// The room's members on every replica now (this replica's own count is
    /// its live one; the others' as they last reported it).
    fn online(&self, room: &str) -> impl Future<Output = Result<u64, BrokerError>> + Send;

    /// Deletes message `id` from the room's history when `by` may, and
    /// sends `deleted` to the room's members on every replica.
    fn delete(
        &self,
        room: &str,
        id: &str,
        by: Deleter<'_>,
    ) -> impl Future<Output = Result<Deletion, BrokerError>> + Send;

    /// Sends presence events to the room on every replica, with the
    /// room-wide online count given this replica's `local_online`, and
    /// records the room's identified users here (`users`) in the same step.
    fn presence(
        &self,
        room: &str,
        local_online: usize,
        users: UserChanges,
        events: Vec<String>,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Who is in the room: its online count and identified users on every
    /// replica (at most [`MAX_LISTED`](crate::fanout::users::MAX_LISTED)).
    fn members(&self, room: &str) -> impl Future<Output = Result<Members, BrokerError>> + Send;

    /// Every joiner calls this, after joining the local room and before
    /// reading its history: returns once this replica carries the room (every
    /// message from now on reaches the local room), starting that if needed.
    /// An error means it does not: the joiner must not be made live.
    fn watch(&self, room: &str) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Carries `control` to every replica's connections (this one's too) and
    /// returns how many connections it reached in all.
    fn control(&self, control: Control) -> impl Future<Output = Result<u64, BrokerError>> + Send;

    /// Up to `limit` rooms with members now on any replica, by name, after
    /// `after`.
    fn rooms(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<RoomPage, BrokerError>> + Send;

    /// The room lost its last local member: stop carrying it here.
    fn unwatch(&self, room: &str);

    /// Whether the broker can accept messages now (readiness).
    fn is_ready(&self) -> bool;

    /// Periodic housekeeping (expiring idle rooms' history).
    fn prune(&self);
}

/// The configured broker.
// One per process: the size of the memory variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Memory(MemoryBroker),
    Redis(RedisBroker),
}

impl Backend {
    /// `messaging.system` on broker spans.
    pub fn system(&self) -> &'static str {
        match self {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }
}

impl Broker for Backend {
    async fn publish(&self, msg: Publish<'_>) -> Result<Published, BrokerError> {
        // A child of the message (or API request) span when that trace is
        // recorded; the room name is user data and is not an attribute.
        let span = crate::telemetry::spans::publish_span(self.system());
        let published = match self {
            Backend::Memory(b) => b.publish(msg).instrument(span.clone()).await,
            Backend::Redis(b) => b.publish(msg).instrument(span.clone()).await,
        };
        if let Ok(p) = &published {
            crate::telemetry::spans::published(&span, p.seq);
        }
        published
    }

    async fn control(&self, control: Control) -> Result<u64, BrokerError> {
        match self {
            Backend::Memory(b) => b.control(control).await,
            Backend::Redis(b) => b.control(control).await,
        }
    }

    async fn rooms(&self, limit: usize, after: Option<&str>) -> Result<RoomPage, BrokerError> {
        match self {
            Backend::Memory(b) => b.rooms(limit, after).await,
            Backend::Redis(b) => b.rooms(limit, after).await,
        }
    }

    async fn history(&self, room: &str, since: &Since) -> Result<History, BrokerError> {
        match self {
            Backend::Memory(b) => b.history(room, since).await,
            Backend::Redis(b) => b.history(room, since).await,
        }
    }

    async fn online(&self, room: &str) -> Result<u64, BrokerError> {
        match self {
            Backend::Memory(b) => b.online(room).await,
            Backend::Redis(b) => b.online(room).await,
        }
    }

    async fn delete(&self, room: &str, id: &str, by: Deleter<'_>) -> Result<Deletion, BrokerError> {
        match self {
            Backend::Memory(b) => b.delete(room, id, by).await,
            Backend::Redis(b) => b.delete(room, id, by).await,
        }
    }

    async fn presence(
        &self,
        room: &str,
        local: usize,
        users: UserChanges,
        events: Vec<String>,
    ) -> Result<(), BrokerError> {
        match self {
            Backend::Memory(b) => b.presence(room, local, users, events).await,
            Backend::Redis(b) => b.presence(room, local, users, events).await,
        }
    }

    async fn members(&self, room: &str) -> Result<Members, BrokerError> {
        match self {
            Backend::Memory(b) => b.members(room).await,
            Backend::Redis(b) => b.members(room).await,
        }
    }

    async fn watch(&self, room: &str) -> Result<(), BrokerError> {
        match self {
            Backend::Memory(b) => b.watch(room).await,
            Backend::Redis(b) => b.watch(room).await,
        }
    }

    fn unwatch(&self, room: &str) {
        match self {
            Backend::Memory(b) => b.unwatch(room),
            Backend::Redis(b) => b.unwatch(room),
        }
    }

    fn is_ready(&self) -> bool {
        match self {
            Backend::Memory(b) => b.is_ready(),
            Backend::Redis(b) => b.is_ready(),
        }
    }

    fn prune(&self) {
        match self {
            Backend::Memory(b) => b.prune(),
            Backend::Redis(b) => b.prune(),
        }
    }
}
