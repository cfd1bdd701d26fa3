//! Reserved display names: a guest (every static token today) may not take
//! one (PROTOCOL.md §8). Matching ignores case, spaces, `-` and `_`, so
//! `Admin`, `ad min` and `WS_Chat` are caught along with `admin` and
//! `ws-chat`.

use std::collections::HashSet;

use crate::protocol::clean_name;

/// The name a guest gets when it asks for a reserved one, as for any name
/// that is not valid (the protocol's fallback).
pub const FALLBACK: &str = "guest";

/// The reserved names in force.
#[derive(Debug, Default)]
pub struct ReservedNames {
    keys: HashSet<String>,
}

/// What two names that look alike have in common: ASCII lower case, without
/// spaces, `-` and `_` (display names are ASCII letters, digits, `_`, `-`
/// and spaces).
fn key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl ReservedNames {
    /// From `auth.reserved_names` (entries that can never match are
    /// reported by [`problems`], and skipped here).
    pub fn new(names: &[String]) -> ReservedNames {
        ReservedNames {
            keys: names
                .iter()
                .map(|n| key(n))
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    /// Whether a cleaned display name is reserved.
    pub fn is_reserved(&self, name: &str) -> bool {
        !self.keys.is_empty() && self.keys.contains(&key(name))
    }

    /// The display name of a guest that asked for `raw`: cleaned (see
    /// [`clean_name`]), and [`FALLBACK`] if that is reserved.
    pub fn guest_name(&self, raw: Option<&str>) -> String {
        let name = clean_name(raw);
        if self.is_reserved(&name) {
            FALLBACK.to_string()
        } else {
            name
        }
    }
}

/// Entries of `auth.reserved_names` that could never match a display name.
pub fn problems(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| clean_name(Some(n)) != n.trim() || key(n).is_empty())
        .map(|n| {
            format!(
                "auth.reserved_names: `{}` can never be a display name (1 to 24 ASCII \
                 letters, digits, `_`, `-` and spaces)",
                n.escape_debug()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserved() -> ReservedNames {
        ReservedNames::new(&["admin".into(), "ws-chat".into(), "System".into()])
    }

    #[test]
    fn reserved_names_match_whatever_the_case_and_separators() {
        let r = reserved();
        for taken in [
            "admin",
            "ADMIN",
            " Admin ",
            "ad min",
            "a-d_m i n",
            "ws chat",
            "WS_Chat",
            "system",
        ] {
            assert_eq!(r.guest_name(Some(taken)), FALLBACK, "{taken}");
        }
        // Removed characters do not hide a reserved name (PROTOCOL.md §13).
        assert_eq!(r.guest_name(Some("ad\u{202e}min")), FALLBACK);
        assert_eq!(r.guest_name(Some("\u{0}admin")), FALLBACK);
        for free in ["admins", "adm1n", "ana", "systemd", "chat"] {
            assert_eq!(r.guest_name(Some(free)), free.to_string(), "{free}");
        }
        assert!(!ReservedNames::new(&[]).is_reserved("admin"));
    }

    #[test]
    fn entries_that_cannot_match_are_reported() {
        assert!(problems(&["admin".into(), "ws-chat".into(), "Mod 1".into()]).is_empty());
        let p = problems(&["ädmin".into(), "".into(), "a".repeat(25), "--".into()]);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p.iter().all(|m| m.starts_with("auth.reserved_names")));
    }
}
