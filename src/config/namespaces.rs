//! Room namespaces: rooms whose names match a pattern get their own policy
//! (`[[rooms.namespaces]]`, first match wins); every other room gets the
//! `[rooms]` defaults, which are version 1's behaviour.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::serde_with::opt_duration;
use super::RoomSettings;

/// One `[[rooms.namespaces]]` entry. A field left out takes the default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSettings {
    /// A room name, or a prefix ending in `*` (`"dash-*"`).
    pub pattern: String,
    /// Messages kept per room and sent on join (default `rooms.history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<usize>,
    /// Messages older than this leave the room's history (retention); none:
    /// kept until trimmed by `history` or the room's idle expiry.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub history_max_age: Option<Duration>,
    /// Join and leave events (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<bool>,
    /// Whether clients may publish; `false`: only tokens with `moderate`
    /// (and, later, backends through the server API). Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_publish: Option<bool>,
    /// Members the room may have on every replica together (0: no cap);
    /// a join past it gets `room_full` (moderators may still join).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_members: Option<u64>,
    /// `latest`: a consumer that falls behind skips to the newest frames of
    /// the room instead of being closed with 1013. Default `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// How a room's frames reach a consumer that falls behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Every frame, in order; a consumer that falls too far behind is closed
    /// with 1013 (version 1's behaviour).
    #[default]
    All,
    /// In a full queue, a newer frame of the room replaces its oldest queued
    /// one: stale events are dropped, the connection stays.
    Latest,
}

/// What a room's namespace allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub history: usize,
    /// Messages older than this leave history (`None`: no age limit).
    pub history_max_age: Option<Duration>,
    pub presence: bool,
    pub client_publish: bool,
    /// 0: no cap.
    pub max_members: u64,
    pub delivery: Delivery,
}

/// Whether `pattern` (a name, or a prefix ending in `*`) matches `room`.
fn matches(pattern: &str, room: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => room == pattern,
    }
}

impl Policy {
    /// The oldest `sentAt` history may keep now, in the messages' own
    /// format (RFC 3339 UTC, milliseconds), which sorts as it reads: a
    /// message is kept while its `sentAt` is not below this.
    pub fn oldest_kept(&self, now: SystemTime) -> Option<String> {
        let age = self.history_max_age?;
        let at = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
        Some(humantime::format_rfc3339_millis(at).to_string())
    }
}

/// A message JSON's `sentAt` (the wire format is pinned: the field is
/// written by the server, and quotes in user text are escaped, so its key
/// cannot appear anywhere else).
pub fn sent_at(json: &str) -> Option<&str> {
    let at = json.find("\"sentAt\":\"")? + 10;
    json.get(at..at + 24)
}

impl RoomSettings {
    /// The policy of `room`: its first matching namespace's, else the
    /// defaults.
    pub fn policy(&self, room: &str) -> Policy {
        let ns = self.namespaces.iter().find(|n| matches(&n.pattern, room));
        Policy {
            history: ns.and_then(|n| n.history).unwrap_or(self.history),
            history_max_age: ns.and_then(|n| n.history_max_age),
            presence: ns.and_then(|n| n.presence).unwrap_or(true),
            client_publish: ns.and_then(|n| n.client_publish).unwrap_or(true),
            max_members: ns.and_then(|n| n.max_members).unwrap_or(0),
            delivery: ns.and_then(|n| n.delivery).unwrap_or_default(),
        }
    }

    /// The most messages any room keeps.
    pub fn largest_history(&self) -> usize {
        let each = self.namespaces.iter().filter_map(|n| n.history);
        each.chain([self.history]).max().unwrap_or(self.history)
    }

    /// Every problem in the namespaces, each naming its entry.
    pub fn namespace_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (i, n) in self.namespaces.iter().enumerate() {
            let key = format!("rooms.namespaces[{i}]");
            let name = n.pattern.strip_suffix('*').unwrap_or(&n.pattern);
            let valid = name.len() <= 32
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && (!name.is_empty() || n.pattern == "*");
            if !valid {
                p.push(format!(
                    "{key}.pattern: a room name, or a prefix ending in `*` \
                     (letters, digits, '-', '_'; at most 32)"
                ));
            }
            if n.history_max_age == Some(Duration::ZERO) {
                p.push(format!("{key}.history_max_age: must be longer than 0s"));
            }
            if n.history == Some(0) {
                p.push(format!("{key}.history: must be at least 1"));
            }
            if self.namespaces[..i].iter().any(|o| o.pattern == n.pattern) {
                p.push(format!(
                    "{key}.pattern: `{}` is already an earlier entry's (first match wins, \
                     so this one would never apply)",
                    n.pattern
                ));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms(namespaces: Vec<NamespaceSettings>) -> RoomSettings {
        let sources = crate::config::Sources::from_env([("X", "")]);
        let mut r = crate::config::Settings::load(&sources, |_| Vec::new())
            .expect("defaults")
            .rooms;
        r.namespaces = namespaces;
        r
    }

    fn ns(pattern: &str) -> NamespaceSettings {
        NamespaceSettings {
            pattern: pattern.into(),
            history: None,
            history_max_age: None,
            presence: None,
            client_publish: None,
            max_members: None,
            delivery: None,
        }
    }

    #[test]
    fn the_first_matching_namespace_decides_and_others_get_the_defaults() {
        let dash = NamespaceSettings {
            client_publish: Some(false),
            presence: Some(false),
            history: Some(5),
            ..ns("dash-*")
        };
        let exact = NamespaceSettings {
            history: Some(7),
            ..ns("dash-builds")
        };
        let r = rooms(vec![dash, exact]);
        let p = r.policy("dash-builds");
        assert_eq!((p.history, p.presence, p.client_publish), (5, false, false));
        assert_eq!(
            r.policy("lobby"),
            Policy {
                history: 50,
                history_max_age: None,
                presence: true,
                client_publish: true,
                max_members: 0,
                delivery: Delivery::All
            }
        );
        assert_eq!(r.largest_history(), 50);
        assert_eq!(r.namespace_problems(), Vec::<String>::new());
    }

    #[test]
    fn the_oldest_kept_time_compares_with_sent_at_as_text() {
        let json = r#"{"id":"i","room":"r","from":"a","text":"say \"sentAt\":\"x","sentAt":"2026-01-01T00:00:10.000Z","seq":1}"#;
        assert_eq!(sent_at(json), Some("2026-01-01T00:00:10.000Z"));
        let policy = RoomSettings::policy(
            &rooms(vec![NamespaceSettings {
                history_max_age: Some(Duration::from_secs(5)),
                ..ns("*")
            }]),
            "any",
        );
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + secs);
        let cutoff = policy.oldest_kept(at(14)).unwrap();
        assert_eq!(cutoff, "2026-01-01T00:00:09.000Z");
        assert!(sent_at(json).unwrap() >= cutoff.as_str(), "kept at 14 s");
        let cutoff = policy.oldest_kept(at(16)).unwrap();
        assert!(sent_at(json).unwrap() < cutoff.as_str(), "gone at 16 s");
    }

    #[test]
    fn bad_patterns_zero_history_and_shadowed_entries_are_refused() {
        let r = rooms(vec![
            ns("a b"),
            NamespaceSettings {
                history: Some(0),
                ..ns("x-*")
            },
            ns("x-*"),
            ns(""),
        ]);
        let p = r.namespace_problems();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("rooms.namespaces[0].pattern"));
        assert!(p[1].starts_with("rooms.namespaces[1].history"));
        assert!(p[2].contains("already an earlier entry"));
        assert!(p[3].starts_with("rooms.namespaces[3].pattern"));
    }
}
