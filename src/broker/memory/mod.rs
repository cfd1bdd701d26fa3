//! The in-memory broker: one process, history in RAM under a byte budget
//! ([`store`]), a new epoch per start.
//!
//! Each room has a head (its `seq`) with its own lock, held while a message
//! is numbered, stored and handed to the local rooms, so that members see a
//! room's messages in `seq` order. Fan-out only queues (never waits), so the
//! lock is short; other rooms are not blocked. The histories live in one
//! [`Store`] behind a global lock that is only ever held for map and index
//! updates, never while waiting on a head: the order is head, then store.
//!
//! Rooms with members are tracked through `watch`/`unwatch`: the store
//! never drops their history to make room, and drops a room that was only
//! joined, never written, when its last member leaves.

mod store;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::broker::{
    control, Broker, BrokerError, Control, ControlSender, Deleter, Deletion, History, Members,
    Publish, Published, RoomPage, Since, UserChanges,
};
use crate::config::RoomSettings;
use crate::fanout::rooms::{Delivery, Rooms};
use crate::fanout::users::MAX_LISTED;
use crate::metrics::Metrics;
use crate::protocol::event::{self, MessageHead};
use crate::ws::frame;

use store::Store;

/// Idempotent publishes' first answers by room and scope, with when they end.
type OnceMap = HashMap<(Arc<str>, [u8; 32]), (Published, Instant)>;

/// History and fan-out for a single process.
pub struct MemoryBroker {
    store: Mutex<Store>,
    rooms: Arc<Rooms>,
    metrics: Arc<Metrics>,
    history_ttl: Duration,
    /// Idempotent publishes' first answers, until their window ends.
    once: Mutex<OnceMap>,
    /// Where kicks and disconnects go: this process's sessions.
    control: ControlSender,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryBroker {
    /// A broker whose history starts empty, keeping at most each room's
    /// namespace's `history` messages per room and `history_bytes` in all.
    pub fn new(
        rooms: Arc<Rooms>,
        metrics: Arc<Metrics>,
        room_settings: RoomSettings,
        history_bytes: usize,
        history_ttl: Duration,
        control: ControlSender,
    ) -> Self {
        MemoryBroker {
            store: Mutex::new(Store::new(room_settings, history_bytes, metrics.clone())),
            rooms,
            metrics,
            history_ttl,
            once: Mutex::new(HashMap::new()),
            control,
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }
}

impl Broker for MemoryBroker {
    async fn publish(&self, msg: Publish<'_>) -> Result<Published, BrokerError> {
        let started = Instant::now();
        let room = msg.room;
        let message = MessageHead::new(room, msg.from, msg.user, msg.text);
        let head = self.store().head(room);
        let mut numbering = lock(&head);
        // Under the room's numbering lock: two publishes with the same scope
        // cannot both miss.
        let once = msg
            .once
            .map(|o| ((Arc::<str>::from(room), o.scope), o.window));
        if let Some((key, _)) = &once {
            if let Some((first, until)) = lock(&self.once).get(key) {
                if *until > Instant::now() {
                    return Ok(Published {
                        replayed: true,
                        ..first.clone()
                    });
                }
            }
        }
        numbering.seq += 1;
        let seq = numbering.seq;
        let json: Arc<str> = message.finish(seq).into();
        let frame = frame::text(&event::message(&json));
        let epoch = {
            let mut store = self.store();
            store.push(room, &head, seq, json, msg.accepted_at);
            store.epoch(room)
        };
        self.metrics
            .broker_latency
            .observe(started.elapsed().as_secs_f64());
        let delivery = Delivery {
            seq: Some(seq),
            frame,
            accepted_at: Some(msg.accepted_at),
        };
        // Queued in seq order under the numbering lock, written after it.
        let queued = self.rooms.enqueue(room, delivery);
        let recipients = queued.recipients;
        let published = Published {
            id: message.id().to_owned(),
            seq,
            epoch,
            replayed: false,
        };
        if let Some((key, window)) = once {
            lock(&self.once).insert(key, (published.clone(), Instant::now() + window));
        }
        drop(numbering);
        queued.run();
        // A backend's message into a room nobody is in: its history is
        // idle from the start (expires and may be evicted like any idle room).
        if recipients == 0 {
            self.unwatch(room);
        }
        crate::telemetry::spans::fan_out_here(seq, recipients);
        Ok(published)
    }

    async fn control(&self, control: Control) -> Result<u64, BrokerError> {
        control::apply_here(&self.control, control).await
    }

    async fn rooms(&self, limit: usize, after: Option<&str>) -> Result<RoomPage, BrokerError> {
        let (rooms, more) = self.rooms.page(limit, after);
        let next = match more {
            true => rooms.last().map(|(room, _)| room.clone()),
            false => None,
        };
        Ok(RoomPage { rooms, next })
    }

    async fn online(&self, room: &str) -> Result<u64, BrokerError> {
        Ok(self.rooms.get(room).map_or(0, |r| r.local_online()) as u64)
    }

    async fn delete(&self, room: &str, id: &str, by: Deleter<'_>) -> Result<Deletion, BrokerError> {
        // Under the room's numbering lock, like a publish: members see the
        // `deleted` after the message it names.
        let head = self.store().head(room);
        let numbering = lock(&head);
        let removed = self.store().remove(room, id, |json| {
            let author = event::parse_message(json).and_then(|m| m.user);
            by.may_delete(author.as_deref())
        });
        let seq = match removed {
            None => return Ok(Deletion::NotFound),
            Some(Err(())) => return Ok(Deletion::Forbidden),
            Some(Ok(seq)) => seq,
        };
        let queued = (self.rooms).enqueue_event(room, &event::deleted(room, id, seq));
        drop(numbering);
        queued.run();
        Ok(Deletion::Deleted { seq })
    }

    async fn history(&self, room: &str, since: &Since) -> Result<History, BrokerError> {
        // Under the room's numbering lock, which `publish` holds from storing
        // a message to queueing it: a read between the two would return the
        // message and let the joiner go live before it was queued, so the
        // joiner would get it twice. A message numbered after this read is
        // queued after it, and reaches the joiner once (it is pending until
        // activated after `last_seq`).
        let head = self.store().head(room);
        let _numbering = lock(&head);
        Ok(self.store().read(room, since))
    }

    async fn presence(
        &self,
        room: &str,
        local_online: usize,
        // One process: the local room is the whole room, nothing to record.
        _users: UserChanges,
        events: Vec<String>,
    ) -> Result<(), BrokerError> {
        for text in events {
            let json = event::presence(room, &text, local_online as u64);
            self.rooms.deliver_event(room, &json);
        }
        Ok(())
    }

    async fn members(&self, room: &str) -> Result<Members, BrokerError> {
        let (online, local) = self
            .rooms
            .get(room)
            .map_or((0, Vec::new()), |r| r.local_users(MAX_LISTED + 1));
        Ok(Members::merge(online as u64, local, Vec::new()))
    }

    async fn watch(&self, room: &str) -> Result<(), BrokerError> {
        self.store().pin(room);
        Ok(())
    }

    fn unwatch(&self, room: &str) {
        // Under the store's lock: a member that joined since the leave that
        // led here is either in the rooms now (the room stays pinned), or
        // pins it after this.
        let mut store = self.store();
        if self.rooms.get(room).is_none() {
            store.unpin(room);
        }
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn prune(&self) {
        let now = Instant::now();
        lock(&self.once).retain(|_, (_, until)| *until > now);
        self.store()
            .prune(now, self.history_ttl, |room| self.rooms.get(room).is_some());
    }
}
