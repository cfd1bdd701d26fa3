//! The identified users of one room on this replica, for `who`: how many of
//! each user's connections are in the room (a user is listed while any is),
//! the changes the other replicas have not been told yet, and the merged,
//! capped list a `members` event carries.
//!
//! Kept under the room's lock and updated in O(1) per join and leave; a
//! guest (a member without `user`) is never recorded here.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

/// Most users a `members` event lists (PROTOCOL.md §10); past it the event
/// says `truncated`.
pub const MAX_LISTED: usize = 100;

/// One identified user of a room, once however many connections it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub user: Arc<str>,
    /// The name of the user's first connection in the room (a user's
    /// connections may carry different names).
    pub name: Arc<str>,
    /// Its connections in the room: exact on this replica; another replica
    /// reports only that the user is there, which counts as one.
    pub connections: u32,
}

/// What the other replicas have to learn about a room's users here.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum UserChanges {
    /// Nothing changed.
    #[default]
    Unchanged,
    /// These users arrived (with their name) or left (`None`), last state
    /// per user since the previous report.
    Delta(Vec<(Arc<str>, Option<Arc<str>>)>),
    /// Every user here: replaces what was reported before (the periodic
    /// refresh, which also repairs a lost or reordered delta).
    Full(Vec<Listed>),
}

struct Here {
    connections: u32,
    name: Arc<str>,
}

/// One room's identified users on this replica.
#[derive(Default)]
pub struct RoomUsers {
    here: HashMap<Arc<str>, Here>,
    /// Users whose presence changed since the last report: `Some(name)`
    /// arrived, `None` left.
    changed: HashMap<Arc<str>, Option<Arc<str>>>,
}

impl RoomUsers {
    /// A connection of `user` entered the room.
    pub fn add(&mut self, user: &Arc<str>, name: &Arc<str>) {
        match self.here.entry(user.clone()) {
            Entry::Occupied(mut e) => e.get_mut().connections += 1,
            Entry::Vacant(e) => {
                e.insert(Here {
                    connections: 1,
                    name: name.clone(),
                });
                self.changed.insert(user.clone(), Some(name.clone()));
            }
        }
    }

    /// A connection of `user` left the room; the user is gone with its last.
    pub fn remove(&mut self, user: &str) {
        let Some(here) = self.here.get_mut(user) else {
            return;
        };
        here.connections = here.connections.saturating_sub(1);
        if here.connections == 0 {
            if let Some((user, _)) = self.here.remove_entry(user) {
                self.changed.insert(user, None);
            }
        }
    }

    /// The changes since the last report, and forgets them.
    pub fn take_changes(&mut self) -> UserChanges {
        if self.changed.is_empty() {
            return UserChanges::Unchanged;
        }
        UserChanges::Delta(self.changed.drain().collect())
    }

    /// Every user here, as a report that replaces the previous ones (pending
    /// changes are part of it, so they are forgotten).
    pub fn take_all(&mut self) -> UserChanges {
        self.changed.clear();
        UserChanges::Full(self.list(usize::MAX))
    }

    /// At most `max` of the users here.
    pub fn list(&self, max: usize) -> Vec<Listed> {
        self.here
            .iter()
            .take(max)
            .map(|(user, here)| Listed {
                user: user.clone(),
                name: here.name.clone(),
                connections: here.connections,
            })
            .collect()
    }
}

/// The answer to `who`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    /// The room's online count, guests included.
    pub online: u64,
    /// At most [`MAX_LISTED`] users, one entry each, by user id.
    pub listed: Vec<Listed>,
    /// More users are in the room than are listed.
    pub truncated: bool,
}

impl Members {
    /// Merges this replica's users with those other replicas report: one
    /// entry per user (the first seen wins, local first), capped at
    /// [`MAX_LISTED`]. To tell a full list from a truncated one, `local`
    /// should hold up to `MAX_LISTED + 1` users and `remote` up to that
    /// many more than `local` (some of them may be local users too).
    pub fn merge(online: u64, local: Vec<Listed>, remote: Vec<Listed>) -> Members {
        let mut listed: Vec<Listed> = Vec::with_capacity(MAX_LISTED + 1);
        let mut at: HashMap<Arc<str>, usize> = HashMap::with_capacity(MAX_LISTED + 1);
        for l in local.into_iter().chain(remote) {
            if let Some(&i) = at.get(&l.user) {
                // Here and on another replica: both count.
                listed[i].connections += l.connections;
                continue;
            }
            if listed.len() > MAX_LISTED {
                break;
            }
            at.insert(l.user.clone(), listed.len());
            listed.push(l);
        }
        let truncated = listed.len() > MAX_LISTED;
        listed.truncate(MAX_LISTED);
        listed.sort_by(|a, b| a.user.cmp(&b.user));
        Members {
            online,
            listed,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(user: &str, name: &str) -> Listed {
        Listed {
            user: user.into(),
            name: name.into(),
            connections: 1,
        }
    }

    #[test]
    fn a_user_is_listed_once_until_its_last_connection_leaves() {
        let mut u = RoomUsers::default();
        let (ana, name) = (Arc::from("u1"), Arc::from("Ana"));
        u.add(&ana, &name);
        u.add(&ana, &"Ana 2".into());
        let two = Listed {
            connections: 2,
            ..listed("u1", "Ana")
        };
        assert_eq!(u.list(10), [two]);
        assert_eq!(
            u.take_changes(),
            UserChanges::Delta(vec![(ana.clone(), Some(name.clone()))])
        );
        u.remove("u1");
        assert_eq!(
            u.take_changes(),
            UserChanges::Unchanged,
            "one connection left"
        );
        u.remove("u1");
        assert_eq!(u.list(10), []);
        assert_eq!(u.take_changes(), UserChanges::Delta(vec![(ana, None)]));
        u.remove("nobody");
        assert_eq!(u.take_changes(), UserChanges::Unchanged);
    }

    #[test]
    fn a_full_report_replaces_pending_changes() {
        let mut u = RoomUsers::default();
        u.add(&"u1".into(), &"Ana".into());
        assert_eq!(u.take_all(), UserChanges::Full(vec![listed("u1", "Ana")]));
        assert_eq!(u.take_changes(), UserChanges::Unchanged);
    }

    #[test]
    fn merging_lists_each_user_once_and_caps_at_the_maximum() {
        let m = Members::merge(
            5,
            vec![listed("b", "Bo"), listed("a", "Ana")],
            vec![listed("a", "Other name"), listed("c", "Cy")],
        );
        assert_eq!(
            m,
            Members {
                online: 5,
                listed: vec![
                    Listed {
                        connections: 2,
                        ..listed("a", "Ana")
                    },
                    listed("b", "Bo"),
                    listed("c", "Cy")
                ],
                truncated: false,
            }
        );
        let many = |from: usize, n: usize| {
            (from..from + n)
                .map(|i| listed(&format!("u{i:03}"), "x"))
                .collect::<Vec<_>>()
        };
        let exactly = Members::merge(0, many(0, 50), many(0, 100));
        assert_eq!(
            (exactly.listed.len(), exactly.truncated),
            (MAX_LISTED, false)
        );
        let over = Members::merge(0, many(0, 50), many(25, 100));
        assert_eq!((over.listed.len(), over.truncated), (MAX_LISTED, true));
        let local_only = Members::merge(0, many(0, MAX_LISTED + 1), Vec::new());
        assert!(local_only.truncated);
    }
}
