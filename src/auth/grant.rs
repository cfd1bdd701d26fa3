//! One [`Grant`] answers every permission question: who (user and name),
//! where (rooms), what (`perm`) and until when (`expires`). Static tokens and
//! JWTs both produce one; it is looked up at every action, never cached past
//! a reload or an expiry.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What a connection may do: any of read, write, moderate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm(u8);

impl Perm {
    /// Receive the room's messages (joining needs it).
    pub const READ: Perm = Perm(1);
    /// Send messages.
    pub const WRITE: Perm = Perm(2);
    /// Act on others' messages (deleting comes in a later version).
    pub const MODERATE: Perm = Perm(4);
    /// What a token that says nothing may do: read and write.
    pub const DEFAULT: Perm = Perm(1 | 2);

    /// Parses `["read","write","moderate"]`; an unknown word is an error.
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<Perm, &'static str> {
        let mut perm = Perm(0);
        for w in words {
            perm.0 |= match w.as_ref() {
                "read" => Perm::READ.0,
                "write" => Perm::WRITE.0,
                "moderate" => Perm::MODERATE.0,
                _ => return Err("perm: each entry is \"read\", \"write\" or \"moderate\""),
            };
        }
        Ok(perm)
    }

    /// Whether every permission of `other` is in `self`.
    pub fn contains(self, other: Perm) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The rooms a grant names: exact room names and `prefix*` patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomSet {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl RoomSet {
    /// Parses room names and `prefix*` patterns (room characters only:
    /// ASCII letters, digits, `_`, `-`; at most 32).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<RoomSet, &'static str> {
        let mut set = RoomSet::default();
        for entry in entries {
            let entry = entry.as_ref();
            let (stem, prefix) = match entry.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (entry, false),
            };
            let room_chars = stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !room_chars || stem.len() > 32 || (!prefix && stem.is_empty()) {
                return Err("rooms: each entry is a room name or a prefix ending in `*`");
            }
            if prefix {
                set.prefixes.push(stem.to_string());
            } else {
                set.exact.insert(stem.to_string());
            }
        }
        Ok(set)
    }

    /// Whether `room` is named exactly or by a prefix.
    pub fn contains(&self, room: &str) -> bool {
        self.exact.contains(room) || self.prefixes.iter().any(|p| room.starts_with(p.as_str()))
    }
}

/// A display name a credential fixes (a JWT's `name` or `sub`, a tokens
/// file's `name`), cleaned like the `name` query parameter; `None` when
/// nothing valid is left (the query parameter's rule would make it `guest`).
pub fn display_name(raw: &str) -> Option<String> {
    let cleaned = crate::protocol::clean_name(Some(raw));
    (cleaned != "guest" || raw.trim() == "guest").then_some(cleaned)
}

/// A user id: 1 to 64 characters, no control characters.
pub fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.chars().count()) && !user.chars().any(char::is_control)
}

/// What a credential allows, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The identified user (a JWT's `sub`, a tokens-file `user`); `None`
    /// for a guest token.
    pub user: Option<Arc<str>>,
    /// The display name the credential fixes; `None`: the client chooses.
    pub name: Option<String>,
    /// Rooms it may join; `None` is every room.
    pub rooms: Option<RoomSet>,
    pub perm: Perm,
    /// When it stops being valid (a JWT's `exp`); `None`: while configured.
    pub expires: Option<SystemTime>,
    /// Only clients on loopback may use it: the built-in dev token, when it
    /// is in force because no token was configured.
    pub loopback_only: bool,
}

impl Grant {
    /// Every room, read and write, a guest: a plain `auth.tokens` entry.
    pub fn guest() -> Grant {
        Grant {
            user: None,
            name: None,
            rooms: None,
            perm: Perm::DEFAULT,
            expires: None,
            loopback_only: false,
        }
    }

    /// Whether a client at `ip` may use it. `ip` is the client's address as
    /// the gate sees it: behind a trusted proxy, the forwarded one, so a
    /// proxy on the same machine does not make every client local.
    pub fn allows_client(&self, ip: std::net::IpAddr) -> bool {
        !self.loopback_only || super::is_loopback(ip)
    }

    /// Whether this grant names `room` (permissions aside).
    pub fn allows_room(&self, room: &str) -> bool {
        self.rooms.as_ref().is_none_or(|r| r.contains(room))
    }

    /// Whether a connection may be in `room`: it is named and may read.
    pub fn admits(&self, room: &str) -> bool {
        self.perm.contains(Perm::READ) && self.allows_room(room)
    }

    /// Whether it may send messages.
    pub fn can_write(&self) -> bool {
        self.perm.contains(Perm::WRITE)
    }

    /// Whether it has expired at `now`, allowing `leeway` for clock skew.
    pub fn expired(&self, now: SystemTime, leeway: Duration) -> bool {
        self.expires.is_some_and(|exp| now > exp + leeway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_match_exactly_or_by_prefix() {
        let set = RoomSet::parse(&["ops", "support-*"]).unwrap();
        assert!(set.contains("ops") && set.contains("support-1") && set.contains("support-"));
        assert!(!set.contains("ops2") && !set.contains("support") && !set.contains("lobby"));
        assert!(RoomSet::parse(&["*"]).unwrap().contains("anything"));
        for bad in ["", "a*b", "a b", "**", "x".repeat(33).as_str()] {
            assert!(RoomSet::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn perm_words_and_defaults() {
        let p = Perm::parse(&["read", "moderate"]).unwrap();
        assert!(p.contains(Perm::READ) && p.contains(Perm::MODERATE) && !p.contains(Perm::WRITE));
        assert!(Perm::parse(&["admin"]).is_err());
        let mut g = Grant::guest();
        assert!(g.admits("lobby") && g.can_write());
        g.perm = Perm::parse(&["write"]).unwrap();
        assert!(!g.admits("lobby"), "joining needs read");
        let now = SystemTime::now();
        g.expires = Some(now);
        assert!(!g.expired(now + Duration::from_secs(5), Duration::from_secs(5)));
        assert!(g.expired(now + Duration::from_secs(6), Duration::from_secs(5)));
    }
}
