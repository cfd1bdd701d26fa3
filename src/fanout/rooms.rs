//! Local room membership and fan-out of one encoded frame to every member.
//!
//! Rooms live in 64 shards, each a std mutex held only for map lookups. A
//! room's member list is copied into a shared snapshot lazily, when a frame
//! is delivered after the list changed: a join storm costs O(1) per join, and
//! publishing clones one `Arc` instead of locking out joins during fan-out.
//!
//! A joining member is first *pending*: frames delivered while its history is
//! being read are held for it, then released after the history, skipping what
//! the history already had (by `seq`). Nothing is lost or shown twice.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use crate::config::{self, RoomSettings};
pub use crate::fanout::member::{AddRoom, Member};
use crate::fanout::presence::PresenceState;
use crate::fanout::runner::{Pause, Runner, Tally};
use crate::fanout::users::{Listed, RoomUsers, UserChanges};
use crate::metrics::Metrics;
use crate::ws::transport::Outgoing;

const SHARDS: usize = 64;

type Shard = Mutex<HashMap<Arc<str>, Arc<Room>>>;

/// A room's live members, shared by the fan-outs that read it.
pub(crate) type Snapshot = Arc<[Arc<Member>]>;

/// One frame for a room's members.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message's room sequence number; `None` for presence events.
    pub seq: Option<u64>,
    pub frame: Bytes,
    pub accepted_at: Option<Instant>,
}

struct Pending {
    member: Arc<Member>,
    held: Vec<Delivery>,
    /// Its history ended at this seq, but frames were still queued for the
    /// runner: it goes live when the runner takes them (into `held`), so
    /// that none of them reaches it twice.
    live_after: Option<u64>,
}

/// Makes pending member `at` live: it joins the members, and its held
/// frames newer than `after_seq` (what its history showed) are queued.
fn go_live(inner: &mut RoomInner, at: usize, after_seq: u64, latest: u64, tally: &mut Tally) {
    let pending = inner.pending.swap_remove(at);
    for d in pending.held {
        if d.seq.is_none_or(|s| s > after_seq) {
            tally.add(pending.member.outbox.push(d.outgoing(latest)));
        }
    }
    inner.members.push(pending.member);
    inner.snapshot = None;
}

impl Delivery {
    /// The frame as a connection's queue holds it.
    pub(crate) fn outgoing(self, latest: u64) -> Outgoing {
        Outgoing {
            frame: self.frame,
            accepted_at: self.accepted_at,
            latest,
        }
    }
}

/// One room's local state.
pub struct Room {
    pub name: Arc<str>,
    /// Nonzero (a key of its own) when its namespace has
    /// `delivery = "latest"`: its frames replace each other in a full queue.
    pub(crate) latest: u64,
    inner: Mutex<RoomInner>,
}

struct RoomInner {
    members: Vec<Arc<Member>>,
    snapshot: Option<Snapshot>,
    pending: Vec<Pending>,
    /// Frames waiting for the room's runner, in the room's order.
    queue: Vec<Delivery>,
    /// A runner owns the queue (see [`Runner`]).
    running: bool,
    pub(crate) presence: PresenceState,
    /// Its identified members (joining ones included), for `who`.
    users: RoomUsers,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, RoomInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Local connections in the room, joining ones included.
    pub fn local_online(&self) -> usize {
        let inner = self.lock();
        inner.members.len() + inner.pending.len()
    }

    /// Local connections in the room and at most `max` of its identified
    /// users, read together.
    pub fn local_users(&self, max: usize) -> (usize, Vec<Listed>) {
        let inner = self.lock();
        let online = inner.members.len() + inner.pending.len();
        (online, inner.users.list(max))
    }

    /// The user changes the other replicas have not been told; with
    /// `full`, every user here instead (see [`UserChanges::Full`]).
    pub fn take_users(&self, full: bool) -> UserChanges {
        let mut inner = self.lock();
        match full {
            true => inner.users.take_all(),
            false => inner.users.take_changes(),
        }
    }

    /// Everything queued for the runner and the members to hand it to;
    /// joining members hold it until they are live, and those that finished
    /// their history while it was queued go live here, once it is held for
    /// them. `None` (and the runner released) when the queue is empty.
    pub(crate) fn take_batch(&self, tally: &mut Tally) -> Option<(Vec<Delivery>, Snapshot)> {
        let mut inner = self.lock();
        if inner.queue.is_empty() {
            inner.running = false;
            return None;
        }
        let batch = std::mem::take(&mut inner.queue);
        for p in &mut inner.pending {
            p.held.extend(batch.iter().cloned());
        }
        let inner = &mut *inner;
        let members = (inner.snapshot)
            .get_or_insert_with(|| inner.members.iter().cloned().collect())
            .clone();
        let ready = |inner: &RoomInner| {
            (inner.pending.iter().enumerate()).find_map(|(at, p)| p.live_after.map(|s| (at, s)))
        };
        while let Some((at, after_seq)) = ready(inner) {
            go_live(inner, at, after_seq, self.latest, tally);
        }
        Some((batch, members))
    }

    /// Runs `f` on the room's presence state under its lock.
    pub fn with_presence<T>(&self, f: impl FnOnce(&mut PresenceState) -> T) -> T {
        f(&mut self.lock().presence)
    }
}

/// Every room with local members.
pub struct Rooms {
    shards: Box<[Shard]>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
    /// For each new room's delivery policy (its namespace).
    settings: RoomSettings,
}

/// The result of a leave.
pub struct Left {
    pub room: Arc<Room>,
    /// It was the room's last local member: the broker may stop carrying it.
    pub last: bool,
}

/// A frame queued for a room's members.
#[derive(Default)]
#[must_use = "the frame waits until its room's runner runs"]
pub struct Enqueued {
    /// The room's live local members when it was queued.
    pub recipients: usize,
    /// Set when the caller became the room's runner.
    runner: Option<Runner>,
}

impl Enqueued {
    /// Runs the fan-out in the caller if it is the room's runner.
    pub fn run(self) {
        if let Some(runner) = self.runner {
            runner.run();
        }
    }

    /// Runs the fan-out in a task if the caller is the room's runner.
    pub fn spawn(self) {
        if let Some(runner) = self.runner {
            runner.spawn();
        }
    }
}

/// The result of a join. Whether the member is the room's first here does
/// not matter to the broker: every joiner asks it to carry the room.
pub struct Joined {
    pub room: Arc<Room>,
}

impl Rooms {
    /// No rooms yet.
    pub fn new(metrics: Arc<Metrics>, settings: RoomSettings) -> Rooms {
        Rooms {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next_id: AtomicU64::new(1),
            metrics,
            settings,
        }
    }

    /// A process-unique connection id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn shard(&self, room: &str) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        let mut h = DefaultHasher::new();
        room.hash(&mut h);
        self.shards[h.finish() as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `name` as the room's own shared name when the room is open here, so
    /// that its members do not each hold a copy (32 bytes per connection).
    pub fn intern(&self, name: &str) -> Arc<str> {
        match self.shard(name).get_key_value(name) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(name),
        }
    }

    /// Adds a pending member; frames for the room are held for it until
    /// [`Rooms::activate`].
    pub fn join(&self, member: &Arc<Member>, name: &Arc<str>) -> Joined {
        let mut shard = self.shard(name);
        let room = shard
            .entry(name.clone())
            .or_insert_with(|| {
                self.metrics.rooms_active.inc();
                let latest = match self.settings.policy(name).delivery {
                    config::Delivery::Latest => self.next_id.fetch_add(1, Ordering::Relaxed),
                    config::Delivery::All => 0,
                };
                Arc::new(Room {
                    name: name.clone(),
                    latest,
                    inner: Mutex::new(RoomInner {
                        members: Vec::new(),
                        snapshot: None,
                        pending: Vec::new(),
                        queue: Vec::new(),
                        running: false,
                        presence: PresenceState::default(),
                        users: RoomUsers::default(),
                    }),
                })
            })
            .clone();
        let mut inner = room.lock();
        inner.pending.push(Pending {
            member: member.clone(),
            held: Vec::new(),
            live_after: None,
        });
        if let Some(user) = &member.user {
            inner.users.add(user, &member.name);
        }
        drop(inner);
        Joined { room }
    }

    /// Makes a pending member live: queues the frames held for it that are
    /// newer than `after_seq` (what its history already showed).
    pub fn activate(&self, room: &Room, member: &Arc<Member>, after_seq: u64) {
        let mut inner = room.lock();
        let Some(at) = inner.pending.iter().position(|p| p.member.id == member.id) else {
            return;
        };
        if !inner.queue.is_empty() {
            // Frames its history may already hold are still queued: it goes
            // live when the runner takes them.
            inner.pending[at].live_after = Some(after_seq);
            return;
        }
        let mut tally = Tally::default();
        go_live(&mut inner, at, after_seq, room.latest, &mut tally);
        drop(inner);
        tally.record(&self.metrics);
    }

    /// Removes a member from `name`: the room (for its presence) and
    /// whether it was the room's last local member. `None`: not there.
    pub fn leave(&self, member: &Member, name: &str) -> Option<Left> {
        let mut shard = self.shard(name);
        let room = shard.get(name).cloned()?;
        let mut inner = room.lock();
        if let Some(at) = inner.members.iter().position(|m| m.id == member.id) {
            inner.members.swap_remove(at);
            inner.snapshot = None;
        } else if let Some(at) = inner.pending.iter().position(|p| p.member.id == member.id) {
            inner.pending.swap_remove(at);
        } else {
            return None;
        }
        if let Some(user) = &member.user {
            inner.users.remove(user);
        }
        let last = inner.members.is_empty() && inner.pending.is_empty();
        drop(inner);
        if last {
            shard.remove(name);
            self.metrics.rooms_active.dec();
        }
        Some(Left { room, last })
    }

    /// Up to `limit` local rooms after `after`, by name, with their local
    /// counts, and whether more follow. Walks every shard: for the server
    /// API's room listing, not for the message path.
    pub fn page(&self, limit: usize, after: Option<&str>) -> (Vec<(Arc<str>, u64)>, bool) {
        let mut found: Vec<Arc<Room>> = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            found.extend(
                (shard.iter())
                    .filter(|(name, _)| after.is_none_or(|a| &***name > a))
                    .map(|(_, room)| room.clone()),
            );
        }
        // Counted outside the shard locks (a room's lock is never taken
        // under its shard's here).
        let mut all: Vec<(Arc<str>, u64)> = (found.into_iter())
            .map(|room| (room.name.clone(), room.local_online() as u64))
            .filter(|(_, online)| *online > 0)
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let more = all.len() > limit;
        all.truncate(limit);
        (all, more)
    }

    /// The room, if it has local members.
    pub fn get(&self, room: &str) -> Option<Arc<Room>> {
        self.shard(room).get(room).cloned()
    }

    /// Queues `delivery` for every local member of `room`, in the order of
    /// the calls: the caller holds the lock that orders the room's frames,
    /// and runs the result once it has let go of it.
    pub fn enqueue(&self, room: &str, delivery: Delivery) -> Enqueued {
        let Some(room) = self.get(room) else {
            return Enqueued::default();
        };
        let mut inner = room.lock();
        inner.queue.push(delivery);
        let recipients = inner.members.len();
        let runner = !std::mem::replace(&mut inner.running, true);
        drop(inner);
        Enqueued {
            recipients,
            runner: runner.then(|| Runner {
                room,
                metrics: self.metrics.clone(),
                pause: Pause::of(&self.settings),
            }),
        }
    }

    /// Queues an event that is not a message (presence, `deleted`: no
    /// `seq` of its own, held for joiners and always released to them).
    pub fn enqueue_event(&self, room: &str, json: &[u8]) -> Enqueued {
        let delivery = Delivery {
            seq: None,
            frame: crate::ws::frame::text(json),
            accepted_at: None,
        };
        self.enqueue(room, delivery)
    }

    /// [`Rooms::enqueue_event`], run here.
    pub fn deliver_event(&self, room: &str, json: &[u8]) -> usize {
        let queued = self.enqueue_event(room, json);
        let recipients = queued.recipients;
        queued.run();
        recipients
    }
}
