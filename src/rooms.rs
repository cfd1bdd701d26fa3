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
//!
//! Delivery has two steps: [`Rooms::deliver`] queues the frame for every
//! member (under the broker's ordering lock, so it must be quick), and the
//! returned [`Fanout`] then has it written to the members that are idle,
//! without waking their tasks (see `outbox`), by the room's *sweep*: one task
//! at a time per room that writes each idle member's whole queue. Frames that
//! arrive while a sweep runs ride the next one, so under load each write
//! carries several frames (the kernel's cost is per write, not per frame),
//! and when traffic is light a frame goes out at once.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::auth::TokenDigest;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Outgoing, Pushed};
use crate::presence::PresenceState;

const SHARDS: usize = 64;

type Shard = Mutex<HashMap<Arc<str>, Arc<Room>>>;

/// A connection as the rooms see it.
pub struct Member {
    pub id: u64,
    pub name: Arc<str>,
    pub room: Arc<str>,
    /// Digest of the token it connected with (for revocation).
    pub token: TokenDigest,
    pub outbox: Outbox,
}

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
}

/// One room's local state.
pub struct Room {
    pub name: Arc<str>,
    inner: Mutex<RoomInner>,
    /// IDLE, SWEEPING, or AGAIN (frames came in during the running sweep).
    sweep: AtomicU8,
    /// Parts of the running sweep pass still writing.
    parts_left: AtomicUsize,
}

const IDLE: u8 = 0;
const SWEEPING: u8 = 1;
const AGAIN: u8 = 2;

struct RoomInner {
    members: Vec<Arc<Member>>,
    snapshot: Option<Arc<[Arc<Member>]>>,
    pending: Vec<Pending>,
    pub(crate) presence: PresenceState,
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

    fn snapshot(&self) -> Arc<[Arc<Member>]> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner
            .snapshot
            .get_or_insert_with(|| inner.members.iter().cloned().collect())
            .clone()
    }

    /// One pass of the room's sweep: writes every idle member's queue.
    /// A big room's members are split between tasks so that every core
    /// writes (the last member's wait is the fan-out's latency); this task
    /// writes the first part. Only one pass of a room runs at a time.
    fn sweep_pass(self: &Arc<Room>, metrics: &Arc<Metrics>) {
        self.sweep.store(SWEEPING, Ordering::SeqCst);
        let members = self.snapshot();
        let parts = (members.len() / SWEEP_SPLIT).clamp(1, parallelism());
        let per = members.len().div_ceil(parts).max(1);
        self.parts_left.store(parts, Ordering::SeqCst);
        for p in 1..parts {
            let (room, members, metrics) = (self.clone(), members.clone(), metrics.clone());
            tokio::spawn(async move {
                let end = ((p + 1) * per).min(members.len());
                write_idle(&members[(p * per).min(end)..end], &metrics);
                room.sweep_part_done(&metrics);
            });
        }
        write_idle(&members[..per.min(members.len())], metrics);
        self.sweep_part_done(metrics);
    }

    /// The last part of a pass to finish ends the sweep, or starts another
    /// pass (on a task of its own) if frames came in meanwhile.
    fn sweep_part_done(self: &Arc<Room>, metrics: &Arc<Metrics>) {
        if self.parts_left.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        if self
            .sweep
            .compare_exchange(SWEEPING, IDLE, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            let (room, metrics) = (self.clone(), metrics.clone());
            tokio::spawn(async move { room.sweep_pass(&metrics) });
        }
    }

    /// Runs `f` on the room's presence state under its lock.
    pub fn with_presence<T>(&self, f: impl FnOnce(&mut PresenceState) -> T) -> T {
        f(&mut self.lock().presence)
    }
}

/// Members per sweep task, at least: below this a second task costs more
/// than it saves.
const SWEEP_SPLIT: usize = 64;

/// Rooms up to this size have the first pass on the publisher's task; a
/// bigger one would hold that task (and its worker thread) for too long.
const INLINE_MAX: usize = 1024;

fn parallelism() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Writes what each of `members` left to the fan-out (see `outbox`).
fn write_idle(members: &[Arc<Member>], metrics: &Metrics) {
    let mut delivered = 0u64;
    for member in members {
        member.outbox.flush_direct(&mut |item| {
            if let Some(at) = item.accepted_at {
                delivered += 1;
                metrics.fanout_latency.observe(at.elapsed().as_secs_f64());
            }
        });
    }
    if delivered > 0 {
        metrics.delivered.inc_by(delivered);
    }
}

/// Every room with local members.
pub struct Rooms {
    shards: Box<[Shard]>,
    /// How long a sweep waits before it writes (`session.flush_delay`).
    flush_delay: Duration,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

/// The result of a join.
pub struct Joined {
    pub room: Arc<Room>,
    /// The first local member: the broker must start carrying this room here.
    pub first_local: bool,
}

impl Rooms {
    /// No rooms yet.
    pub fn new(metrics: Arc<Metrics>, flush_delay: Duration) -> Rooms {
        Rooms {
            flush_delay,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next_id: AtomicU64::new(1),
            metrics,
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

    /// Adds a pending member; frames for the room are held for it until
    /// [`Rooms::activate`].
    pub fn join(&self, member: &Arc<Member>) -> Joined {
        let mut shard = self.shard(&member.room);
        let mut first_local = false;
        let room = shard
            .entry(member.room.clone())
            .or_insert_with(|| {
                first_local = true;
                self.metrics.rooms_active.inc();
                Arc::new(Room {
                    name: member.room.clone(),
                    inner: Mutex::new(RoomInner {
                        members: Vec::new(),
                        snapshot: None,
                        pending: Vec::new(),
                        presence: PresenceState::default(),
                    }),
                    sweep: AtomicU8::new(IDLE),
                    parts_left: AtomicUsize::new(0),
                })
            })
            .clone();
        room.lock().pending.push(Pending {
            member: member.clone(),
            held: Vec::new(),
        });
        Joined { room, first_local }
    }

    /// Makes a pending member live: queues the frames held for it that are
    /// newer than `after_seq` (what its history already showed).
    pub fn activate(&self, room: &Room, member: &Arc<Member>, after_seq: u64) {
        let mut inner = room.lock();
        let Some(at) = inner.pending.iter().position(|p| p.member.id == member.id) else {
            return;
        };
        let pending = inner.pending.swap_remove(at);
        for d in pending.held {
            if d.seq.is_none_or(|s| s > after_seq) {
                self.push(member, d);
            }
        }
        inner.members.push(member.clone());
        inner.snapshot = None;
    }

    /// Removes a member. Returns true when it was the room's last local one.
    pub fn leave(&self, member: &Member) -> bool {
        let mut shard = self.shard(&member.room);
        let Some(room) = shard.get(&member.room).cloned() else {
            return false;
        };
        let mut inner = room.lock();
        if let Some(at) = inner.members.iter().position(|m| m.id == member.id) {
            inner.members.swap_remove(at);
            inner.snapshot = None;
        } else if let Some(at) = inner.pending.iter().position(|p| p.member.id == member.id) {
            inner.pending.swap_remove(at);
        }
        let empty = inner.members.is_empty() && inner.pending.is_empty();
        drop(inner);
        if empty {
            shard.remove(&member.room);
            self.metrics.rooms_active.dec();
        }
        empty
    }

    /// The room, if it has local members.
    pub fn get(&self, room: &str) -> Option<Arc<Room>> {
        self.shard(room).get(room).cloned()
    }

    /// Queues `delivery` for every local member of `room`. Callers deliver a
    /// room's frames in order (the broker serializes them per room), then
    /// release that order and let the [`Fanout`] write.
    pub fn deliver(&self, room: &str, delivery: Delivery) -> Fanout<'_> {
        let Some(room) = self.get(room) else {
            return Fanout {
                rooms: self,
                room: None,
                recipients: 0,
                inline: true,
            };
        };
        let snapshot = {
            let mut inner = room.lock();
            for p in &mut inner.pending {
                p.held.push(delivery.clone());
            }
            drop(inner);
            room.snapshot()
        };
        let mut tally = Tally::default();
        for member in snapshot.iter() {
            tally.add(member.outbox.push(Outgoing {
                frame: delivery.frame.clone(),
                accepted_at: delivery.accepted_at,
            }));
        }
        tally.record(&self.metrics);
        Fanout {
            rooms: self,
            recipients: snapshot.len(),
            room: (tally.deferred > 0).then_some(room),
            inline: true,
        }
    }

    fn push(&self, member: &Member, d: Delivery) {
        let mut tally = Tally::default();
        tally.add(member.outbox.push(Outgoing {
            frame: d.frame,
            accepted_at: d.accepted_at,
        }));
        tally.record(&self.metrics);
        if tally.deferred > 0 {
            member.outbox.wake_deferred();
        }
    }

    /// Calls `f` for every local member of every room (revocation, drain).
    pub fn for_each_member(&self, mut f: impl FnMut(&Arc<Member>)) {
        for shard in self.shards.iter() {
            let rooms: Vec<Arc<Room>> = shard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            for room in rooms {
                let inner = room.lock();
                inner.members.iter().for_each(&mut f);
                inner.pending.iter().for_each(|p| f(&p.member));
            }
        }
    }
}

/// A delivery queued for a room's members, still to be written to the idle
/// ones. Dropping it has the room swept (see the module doc), so a frame is
/// never left unsent.
#[must_use = "a dropped Fanout is written at once; hold it until the ordering lock is released"]
pub struct Fanout<'a> {
    rooms: &'a Rooms,
    /// The room, when some member left the frame to its sweep.
    room: Option<Arc<Room>>,
    recipients: usize,
    /// Whether the sweep's first pass may run on the caller's task.
    inline: bool,
}

impl Fanout<'_> {
    /// How many local members the frame was queued for.
    pub fn recipients(&self) -> usize {
        self.recipients
    }

    /// Has the frame written: by a new sweep of the room, part of it on this
    /// task, or by the one already running (which will go round again).
    pub fn flush(self) {}

    /// Like [`Fanout::flush`], but never writes on this task: for a caller
    /// that feeds every room from one task (the Redis receiver).
    pub fn flush_elsewhere(mut self) {
        self.inline = false;
    }
}

impl Drop for Fanout<'_> {
    fn drop(&mut self) {
        let Some(room) = self.room.take() else {
            return;
        };
        let mut state = room.sweep.load(Ordering::SeqCst);
        loop {
            let next = if state == IDLE { SWEEPING } else { AGAIN };
            match room
                .sweep
                .compare_exchange(state, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) if state == IDLE => break,
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
        let (metrics, delay) = (self.rooms.metrics.clone(), self.rooms.flush_delay);
        match tokio::runtime::Handle::try_current() {
            // The first pass starts here, at once: a spawned task would wait
            // its turn in the run queue. Later passes run on tasks of their own.
            Ok(_) if delay.is_zero() && self.inline && self.recipients <= INLINE_MAX => {
                room.sweep_pass(&metrics)
            }
            Ok(rt) => {
                rt.spawn(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    room.sweep_pass(&metrics)
                });
            }
            // Outside a runtime (unit tests) frames wait for their owners.
            Err(_) => {
                room.sweep.store(IDLE, Ordering::SeqCst);
                for member in room.snapshot().iter() {
                    member.outbox.wake_deferred();
                }
            }
        }
    }
}

/// Drop counts of one fan-out, recorded once instead of per recipient.
#[derive(Default)]
struct Tally {
    deferred: u64,
    full: u64,
    slow: u64,
    closed: u64,
}

impl Tally {
    fn add(&mut self, pushed: Pushed) {
        match pushed {
            Pushed::Queued => {}
            Pushed::Deferred => self.deferred += 1,
            Pushed::QueueFull => self.full += 1,
            Pushed::SlowConsumer => self.slow += 1,
            Pushed::Closed => self.closed += 1,
        }
    }

    fn record(&self, m: &Metrics) {
        if self.full > 0 {
            m.drops_queue_full.inc_by(self.full);
        }
        if self.slow > 0 {
            m.drops_slow_consumer.inc_by(self.slow);
            m.slow_consumer_closes.inc_by(self.slow);
        }
        if self.closed > 0 {
            m.drops_closed.inc_by(self.closed);
        }
    }
}
