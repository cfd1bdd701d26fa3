//! The memory broker's histories under one byte budget (`rooms.history_bytes`).
//!
//! Every room's messages are charged their JSON plus a fixed overhead, and
//! every room a fixed overhead; [`Store::bytes`] is the sum. Past the budget:
//!
//! 1. rooms without members lose their whole history, least recently active
//!    first (an ordered index: O(log rooms) per eviction, nothing per
//!    publish under the budget). The room then starts a new epoch.
//! 2. If only rooms with members are left, the oldest messages of the
//!    largest room go, one at a time (an index by size, updated on publish:
//!    O(log rooms)). Rooms with members are never dropped whole.
//!
//! A room that was joined but never written leaves nothing behind once its
//! last member is gone. A namespace's `history_max_age` drops older
//! messages at each publish, join and prune.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::broker::{History, Since};
use crate::config::RoomSettings;
use crate::metrics::Metrics;

mod retention;

/// What a kept message costs besides its JSON: the shared string's counts
/// and allocation rounding, its place in the room's queue (and that queue's
/// spare capacity). Measured: RSS grew 256 B per message of 149 B of JSON
/// (1,000 rooms × 50), 768 B per 640 B message (200 × 50); see
/// `tests/history_budget.rs` for the RSS check.
pub const MESSAGE_OVERHEAD: usize = 96;
/// What a room costs besides its messages: the map entry (and the map's
/// spare capacity), its name and epoch, the lock numbering its messages, its
/// queue, its index entries. Measured: 660–870 B per room (10,000 and 20,000
/// rooms of one message each).
pub const ROOM_OVERHEAD: usize = 768;

/// A room's numbering: held while a message is numbered, stored and handed
/// to the local members, so that they see the room's messages in order.
#[derive(Debug, Default)]
pub struct Head {
    pub seq: u64,
}

/// Whether a room has members here, which decides how it may be evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In `by_size`: only trimmed, never dropped.
    Members,
    /// In `idle` under this tick: dropped first, oldest first.
    Idle(u64),
}

struct Slot {
    head: Arc<Mutex<Head>>,
    /// One life of the room's history (see `History::epoch`).
    epoch: Arc<str>,
    last_seq: u64,
    messages: VecDeque<(u64, Arc<str>)>,
    /// What this room is charged: [`ROOM_OVERHEAD`] plus its messages.
    bytes: usize,
    /// The last message's time; `None` while the room was never written.
    touched: Option<Instant>,
    state: State,
}

/// What the budget cost a publish: rooms dropped and messages trimmed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub rooms: u64,
    pub messages: u64,
}

/// Every room's history, the budget, and the two eviction indexes.
pub struct Store {
    slots: HashMap<Arc<str>, Slot>,
    /// Rooms without members, least recently active (lowest tick) first.
    idle: BTreeMap<u64, Arc<str>>,
    /// Rooms with members, by what they are charged.
    by_size: BTreeSet<(usize, Arc<str>)>,
    tick: u64,
    bytes: usize,
    messages: usize,
    budget: usize,
    /// Each room's history size comes from its namespace (boxed: the store
    /// sits inline in the broker enum).
    room_settings: Box<RoomSettings>,
    metrics: Arc<Metrics>,
}

fn cost(json: &str) -> usize {
    json.len() + MESSAGE_OVERHEAD
}

impl Store {
    /// An empty store keeping at most each room's `history` messages (by its
    /// namespace) and `budget` bytes in all.
    pub fn new(room_settings: RoomSettings, budget: usize, metrics: Arc<Metrics>) -> Store {
        Store {
            slots: HashMap::new(),
            idle: BTreeMap::new(),
            by_size: BTreeSet::new(),
            tick: 0,
            bytes: 0,
            messages: 0,
            budget,
            room_settings: Box::new(room_settings),
            metrics,
        }
    }

    /// Bytes charged now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Rooms kept now (with or without members).
    #[cfg(test)]
    pub fn rooms(&self) -> usize {
        self.slots.len()
    }

    /// The room's slot, created (with members, a new epoch) if it has none.
    fn slot(&mut self, room: &str) -> &mut Slot {
        // The key the map holds (a cheap clone), or a new one for a new room.
        let key = match self.slots.get_key_value(room) {
            Some((key, _)) => key.clone(),
            None => {
                let name: Arc<str> = room.into();
                self.bytes += ROOM_OVERHEAD;
                self.by_size.insert((ROOM_OVERHEAD, name.clone()));
                self.metrics.history_bytes.set(self.bytes as i64);
                name
            }
        };
        self.slots.entry(key).or_insert_with(|| Slot {
            head: Arc::default(),
            epoch: uuid::Uuid::new_v4().to_string().into(),
            last_seq: 0,
            messages: VecDeque::new(),
            bytes: ROOM_OVERHEAD,
            touched: None,
            state: State::Members,
        })
    }

    /// The lock that numbers the room's messages. Only members publish, so
    /// a room that has none yet gets one as a room with members.
    pub fn head(&mut self, room: &str) -> Arc<Mutex<Head>> {
        self.slot(room).head.clone()
    }

    /// This life of the room's history.
    pub fn epoch(&mut self, room: &str) -> Arc<str> {
        self.slot(room).epoch.clone()
    }

    /// The room has a member: it leaves the idle index and is never dropped.
    pub fn pin(&mut self, room: &str) {
        let slot = self.slot(room);
        if let State::Idle(tick) = slot.state {
            slot.state = State::Members;
            let key = (slot.bytes, room.into());
            self.idle.remove(&tick);
            self.by_size.insert(key);
        }
    }

    /// The room lost its last member. Never written: it goes now, with its
    /// epoch (a client that resumes gets a new one and an empty history, as
    /// it would have anyway). Otherwise it becomes the most recently active
    /// idle room.
    pub fn unpin(&mut self, room: &str) {
        let Some((name, slot)) = self.slots.get_key_value(room) else {
            return;
        };
        if slot.state != State::Members {
            return;
        }
        let (name, bytes, written) = (name.clone(), slot.bytes, slot.touched.is_some());
        self.by_size.remove(&(bytes, name.clone()));
        if !written {
            self.drop_slot(room);
            return;
        }
        self.tick += 1;
        self.idle.insert(self.tick, name);
        if let Some(slot) = self.slots.get_mut(room) {
            slot.state = State::Idle(self.tick);
        }
    }

    /// Keeps message `seq` of `room`, numbered under `head` (the caller holds
    /// it), and enforces the budget.
    pub fn push(
        &mut self,
        room: &str,
        head: &Arc<Mutex<Head>>,
        seq: u64,
        json: Arc<str>,
        at: Instant,
    ) -> Evicted {
        let policy = self.room_settings.policy(room);
        let history_size = policy.history;
        let slot = self.slot(room);
        if !Arc::ptr_eq(&slot.head, head) {
            // Numbered in a life of the room that has since been dropped
            // (not possible while its publisher is a member): delivered, not kept.
            return Evicted::default();
        }
        let before = slot.bytes;
        let mut added = 1;
        slot.bytes += cost(&json);
        slot.messages.push_back((seq, json));
        if slot.messages.len() > history_size {
            if let Some((_, old)) = slot.messages.pop_front() {
                slot.bytes -= cost(&old);
                added = 0;
            }
        }
        slot.last_seq = seq;
        slot.touched = Some(at);
        let (after, state) = (slot.bytes, slot.state);
        self.bytes = self.bytes + after - before;
        self.messages += added;
        if state == State::Members && after != before {
            let name: Arc<str> = room.into();
            self.by_size.remove(&(before, name.clone()));
            self.by_size.insert((after, name));
        }
        if let Some(cutoff) = policy.oldest_kept(SystemTime::now()) {
            self.expire(room, &cutoff);
        }
        let evicted = self.enforce();
        self.report();
        evicted
    }

    /// Drops idle rooms, then trims the largest rooms with members, until
    /// the budget holds or nothing is left to drop.
    fn enforce(&mut self) -> Evicted {
        let mut evicted = Evicted::default();
        while self.bytes > self.budget {
            if let Some((_, room)) = self.idle.pop_first() {
                self.drop_slot(&room);
                evicted.rooms += 1;
                continue;
            }
            let Some((bytes, room)) = self.by_size.pop_last() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(&room) else {
                continue;
            };
            let Some((_, old)) = slot.messages.pop_front() else {
                // The largest room holds no message: nothing can be trimmed.
                self.by_size.insert((bytes, room));
                break;
            };
            slot.bytes -= cost(&old);
            self.bytes -= cost(&old);
            self.messages = self.messages.saturating_sub(1);
            self.by_size.insert((slot.bytes, room));
            evicted.messages += 1;
        }
        if evicted != Evicted::default() {
            self.metrics.history_evictions.inc_by(evicted.rooms);
            self.metrics.history_trimmed.inc_by(evicted.messages);
        }
        evicted
    }

    fn drop_slot(&mut self, room: &str) {
        if let Some((name, slot)) = self.slots.remove_entry(room) {
            self.bytes -= slot.bytes;
            self.messages = self.messages.saturating_sub(slot.messages.len());
            match slot.state {
                State::Idle(tick) => {
                    self.idle.remove(&tick);
                }
                State::Members => {
                    self.by_size.remove(&(slot.bytes, name));
                }
            }
        }
        self.report();
    }

    /// The room's history after `since` (all of it if the epoch differs).
    pub fn read(&mut self, room: &str, since: &Since) -> History {
        if let Some(cutoff) = self
            .room_settings
            .policy(room)
            .oldest_kept(SystemTime::now())
        {
            self.expire(room, &cutoff);
        }
        let slot = self.slot(room);
        let same_epoch = since.epoch.as_deref().is_none_or(|e| e == &*slot.epoch);
        let after = since.seq.filter(|_| same_epoch).unwrap_or(0);
        History {
            epoch: slot.epoch.clone(),
            last_seq: slot.last_seq,
            messages: slot
                .messages
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(_, json)| json.clone())
                .collect(),
        }
    }

    /// Drops idle rooms without a message for `ttl`, and unpins rooms with
    /// members that `has_members` says have none (a missed leave).
    pub fn prune(&mut self, now: Instant, ttl: Duration, has_members: impl Fn(&str) -> bool) {
        let expired: Vec<Arc<str>> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                matches!(s.state, State::Idle(_))
                    && s.touched.is_none_or(|t| now.duration_since(t) > ttl)
            })
            .map(|(room, _)| room.clone())
            .collect();
        for room in expired {
            self.drop_slot(&room);
        }
        let orphans: Vec<Arc<str>> = self
            .slots
            .iter()
            .filter(|(room, s)| s.state == State::Members && !has_members(room))
            .map(|(room, _)| room.clone())
            .collect();
        for room in orphans {
            self.unpin(&room);
        }
        // Retention does not wait for the next publish or join.
        let wall = SystemTime::now();
        let aged: Vec<(Arc<str>, String)> = self
            .slots
            .keys()
            .filter_map(|room| {
                let cutoff = self.room_settings.policy(room).oldest_kept(wall)?;
                Some((room.clone(), cutoff))
            })
            .collect();
        for (room, cutoff) in aged {
            self.expire(&room, &cutoff);
        }
    }

    fn report(&self) {
        self.metrics.history_bytes.set(self.bytes as i64);
        self.metrics.history_messages.set(self.messages as i64);
    }
}
