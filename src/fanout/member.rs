//! A connection as the rooms see it: its name, identity and queue, and the
//! state that changes while it lives (its credential, the rooms it is in).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::auth::Credential;
use crate::fanout::outbox::Outbox;

/// A connection as the rooms see it.
pub struct Member {
    pub id: u64,
    pub name: Arc<str>,
    /// The room of its query string: where a message without `room` goes.
    pub home: Arc<str>,
    /// It speaks version 2 (offered `ws-chat.v2`, or sent a version 2
    /// event): a room its grant no longer allows is left (`left`), where a
    /// version 1 connection, which knows no `left`, is closed with 1008.
    v2: AtomicBool,
    state: Mutex<MemberState>,
    /// The identified user, fixed at connect; `None` for guests.
    pub user: Option<Arc<str>>,
    pub outbox: Outbox,
}

struct MemberState {
    /// What it connected with (or refreshed to): its grant is checked
    /// against the auth in force at every action and after every reload.
    credential: Credential,
    /// The rooms it is in (joining ones included).
    rooms: Vec<Arc<str>>,
}

/// Why a member could not take one more room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddRoom {
    Already,
    TooMany,
}

impl Member {
    /// A member in no room yet.
    pub fn new(
        id: u64,
        name: Arc<str>,
        home: Arc<str>,
        credential: Credential,
        user: Option<Arc<str>>,
        outbox: Outbox,
    ) -> Member {
        Member {
            id,
            name,
            home,
            v2: AtomicBool::new(false),
            state: Mutex::new(MemberState {
                credential,
                rooms: Vec::new(),
            }),
            user,
            outbox,
        }
    }

    /// Marks it as speaking version 2.
    pub fn mark_v2(&self) {
        self.v2.store(true, Ordering::Relaxed);
    }

    /// Whether it speaks version 2.
    pub fn speaks_v2(&self) -> bool {
        self.v2.load(Ordering::Relaxed)
    }

    fn state(&self) -> MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The credential in force for this connection now.
    pub fn credential(&self) -> Credential {
        self.state().credential.clone()
    }

    /// Replaces the credential (a refresh for the same user).
    pub fn set_credential(&self, credential: Credential) {
        self.state().credential = credential;
    }

    /// The rooms it is in.
    pub fn rooms(&self) -> Vec<Arc<str>> {
        self.state().rooms.clone()
    }

    /// Whether it is in `room`.
    pub fn holds(&self, room: &str) -> bool {
        self.state().rooms.iter().any(|r| &**r == room)
    }

    /// Takes `room` if it holds fewer than `max`; returns how many it holds.
    pub fn add_room(&self, room: &Arc<str>, max: usize) -> Result<usize, AddRoom> {
        let mut s = self.state();
        if s.rooms.iter().any(|r| r == room) {
            return Err(AddRoom::Already);
        }
        if s.rooms.len() >= max {
            return Err(AddRoom::TooMany);
        }
        // Most connections hold one room: grow one at a time rather than
        // to four places at once (48 bytes per idle connection).
        s.rooms.reserve_exact(1);
        s.rooms.push(room.clone());
        Ok(s.rooms.len())
    }

    /// Gives `room` up; false when it was not in it.
    pub fn remove_room(&self, room: &str) -> bool {
        let mut s = self.state();
        let before = s.rooms.len();
        s.rooms.retain(|r| &**r != room);
        s.rooms.len() != before
    }
}
