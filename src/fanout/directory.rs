//! Every local connection, in or out of rooms: what the drain closes and
//! what a reload re-checks. A version 2 connection may be in no room at all,
//! so walking the rooms would miss it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::fanout::rooms::Member;

const SHARDS: usize = 16;

type Shard = Mutex<HashMap<u64, Weak<Member>>>;

/// Local connections by id, held weakly (a connection's task owns it).
pub struct Directory {
    shards: Box<[Shard]>,
}

impl Default for Directory {
    fn default() -> Directory {
        Directory {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
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

    /// Takes a closed connection off the list.
    pub fn unregister(&self, id: u64) {
        let mut shard = self.shard(id);
        shard.remove(&id);
        // Give back the table of a shard a storm left mostly empty.
        if shard.capacity() > 64 && shard.len() < shard.capacity() / 4 {
            shard.shrink_to_fit();
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
