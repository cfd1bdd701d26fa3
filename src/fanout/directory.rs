//! Every local connection, in or out of rooms: what the drain closes and
//! what a reload re-checks. A version 2 connection may be in no room at all,
//! so walking the rooms would miss it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::fanout::rooms::Member;

/// Shards of the directory; the heartbeat ticker walks one per tick, so
/// this is also how finely heartbeats are spread over their interval.
const SHARDS: usize = 128;

type Shard = Mutex<HashMap<u64, Weak<Member>>>;

/// Local connections by id, held weakly (a connection's task owns it).
pub struct Directory {
    shards: Box<[Shard]>,
    /// Close reasons given with a disconnect (4003), by connection id, until
    /// the connection sends its close frame. Kept here rather than in every
    /// connection: few connections ever have one.
    close_reasons: Mutex<HashMap<u64, Arc<str>>>,
    /// How many reasons are kept: while none is, a closing connection
    /// does not take the map's lock (every close would contend on it).
    reasons_kept: AtomicUsize,
}

impl Default for Directory {
    fn default() -> Directory {
        Directory {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            close_reasons: Mutex::new(HashMap::new()),
            reasons_kept: AtomicUsize::new(0),
        }
    }
}

impl Directory {
    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<Member>>> {
        self.shards[id as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Lists a new connection.
    pub fn register(&self, member: &Arc<Member>) {
        self.shard(member.id)
            .insert(member.id, Arc::downgrade(member));
    }

    /// Keeps `reason` for connection `id`'s close frame.
    pub fn set_close_reason(&self, id: u64, reason: Arc<str>) {
        let mut reasons = self.reasons();
        reasons.insert(id, reason);
        self.reasons_kept.store(reasons.len(), Ordering::Release);
    }

    /// The close reason kept for connection `id`, if any.
    pub fn take_close_reason(&self, id: u64) -> Option<Arc<str>> {
        if self.reasons_kept.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut reasons = self.reasons();
        let taken = reasons.remove(&id);
        self.reasons_kept.store(reasons.len(), Ordering::Release);
        taken
    }

    fn reasons(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<str>>> {
        self.close_reasons.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a closed connection off the list.
    pub fn unregister(&self, id: u64) {
        self.take_close_reason(id);
        let mut shard = self.shard(id);
        shard.remove(&id);
        // Give back the table of a shard a storm left mostly empty.
        if shard.capacity() > 64 && shard.len() < shard.capacity() / 4 {
            shard.shrink_to_fit();
        }
    }

    /// How many shards there are (connection `id` is in shard `id % shards`).
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Calls `f` on every live connection of shard `shard`, under its lock.
    pub fn for_each_in_shard(&self, shard: usize, mut f: impl FnMut(&Member)) {
        let Some(shard) = self.shards.get(shard) else {
            return;
        };
        let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        for member in shard.values().filter_map(Weak::upgrade) {
            f(&member);
        }
    }

    /// Every live connection now.
    pub fn all(&self) -> Vec<Arc<Member>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(shard.values().filter_map(Weak::upgrade));
        }
        out
    }
}
