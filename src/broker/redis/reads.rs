//! Latest-history reads of one room, shared by the joiners that wait for
//! them: at most one read per room is in flight on this replica, and every
//! joiner that asks while it is carries over to the next one.
//!
//! A reconnect storm (a deploy, a network blip) brings a room's members back
//! at once; each read returns up to the room's whole history, so one read per
//! joiner multiplies Redis round trips and reply parsing by the room's size
//! on a replica that is busiest then. Sharing is safe because a joiner is in
//! the room (its frames held) before it asks, and the read it gets is sent
//! after it asked: every message missing from that read reaches it live.
//! Reads from a given `seq` (resumes) are not shared.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::{Read, Shared};
use crate::broker::{BrokerError, Since};

/// What a waiting joiner receives; the error is shared by the whole batch.
type Reply = Result<Arc<Read>, Arc<BrokerError>>;

/// Rooms with a read in flight, each with the joiners for the next read.
#[derive(Default)]
pub(super) struct Reads {
    rooms: Mutex<HashMap<Arc<str>, Vec<oneshot::Sender<Reply>>>>,
}

impl Reads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Vec<oneshot::Sender<Reply>>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The room's latest history (up to `count` messages), from a read sent
/// after this call began, shared with the joiners that asked meanwhile.
pub(super) async fn latest(shared: &Arc<Shared>, room: &str, count: usize) -> Reply {
    let (tx, rx) = oneshot::channel();
    let lead = match shared.reads.lock().entry(room.into()) {
        Entry::Occupied(mut waiting) => {
            waiting.get_mut().push(tx);
            None
        }
        Entry::Vacant(slot) => {
            let room = slot.key().clone();
            slot.insert(Vec::new());
            Some((room, tx))
        }
    };
    if let Some((room, tx)) = lead {
        // In a task of its own: a joiner that gives up (its connection
        // closed) must not strand the others waiting on this read.
        tokio::spawn(run(shared.clone(), room, count, vec![tx]));
    }
    rx.await.unwrap_or(Err(Arc::new(BrokerError::Stopped)))
}

/// Reads for `batch`, then for whoever asked during that read, until no
/// one did.
async fn run(
    shared: Arc<Shared>,
    room: Arc<str>,
    count: usize,
    mut batch: Vec<oneshot::Sender<Reply>>,
) {
    let latest = Since::default();
    loop {
        let reply = match shared.read(&room, &latest, count).await {
            Ok(read) => Ok(Arc::new(read)),
            Err(e) => Err(Arc::new(e)),
        };
        if batch.len() > 1 {
            shared
                .metrics
                .rooms
                .history_reads_shared
                .inc_by(batch.len() as u64 - 1);
        }
        for tx in batch.drain(..) {
            let _ = tx.send(reply.clone());
        }
        let mut rooms = shared.reads.lock();
        match rooms.get_mut(&room) {
            Some(next) if !next.is_empty() => batch = std::mem::take(next),
            _ => {
                rooms.remove(&room);
                return;
            }
        }
    }
}
