//! The server API's keys: read from `[[api.keys]]` (a key in the settings, plain or
//! `sha256:`, or in a file), kept only as SHA-256 digests with their name and
//! scopes, looked up in constant time, and replaced whole on reload.

use std::sync::Arc;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;

use super::{digest, TokenDigest, TokenSecret};
use crate::config::{ApiKeySettings, ApiSettings, Settings};

/// Shortest plain key accepted: a guessable key would open the API.
const MIN_KEY_CHARS: usize = 16;
/// Longest `Authorization` value looked at.
const MAX_PRESENTED: usize = 4096;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Publish,
    Moderate,
    Read,
}

impl Scope {
    fn parse(word: &str) -> Option<Scope> {
        match word {
            "publish" => Some(Scope::Publish),
            "moderate" => Some(Scope::Moderate),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }
}

/// A configured key: its name (for the audit log) and scopes.
#[derive(Debug)]
pub struct ApiKey {
    pub name: Arc<str>,
    scopes: Vec<Scope>,
    digest: TokenDigest,
}

impl ApiKey {
    /// Whether the key has `scope`.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// The keys in force.
#[derive(Default)]
pub struct ApiKeys {
    keys: ArcSwap<Vec<Arc<ApiKey>>>,
}

impl ApiKeys {
    /// Reads every configured key (files included).
    pub fn new(settings: &ApiSettings) -> Result<ApiKeys, String> {
        let keys = ApiKeys::default();
        keys.reload(settings)?;
        Ok(keys)
    }

    /// Replaces the keys with those configured now; on error the old ones
    /// stay in force.
    pub fn reload(&self, settings: &ApiSettings) -> Result<(), String> {
        let read = read_all(settings).map_err(|mut p| p.remove(0))?;
        self.keys.store(Arc::new(read));
        Ok(())
    }

    /// Whether any key is configured (the API is served).
    pub fn any(&self) -> bool {
        !self.keys.load().is_empty()
    }

    /// The key presented in an `Authorization` header value, if it is one
    /// of ours. Every key is compared, in constant time.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<Arc<ApiKey>> {
        let value = authorization.filter(|v| v.len() <= MAX_PRESENTED)?;
        let value = std::str::from_utf8(value).ok()?;
        let (scheme, key) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let presented = digest(key.trim());
        let mut found = None;
        for k in self.keys.load().iter() {
            if bool::from(k.digest.ct_eq(&presented)) {
                found = Some(k.clone());
            }
        }
        found
    }
}

/// Every problem of `[[api.keys]]` (for `check-config` and every load);
/// never includes a key.
pub fn problems(settings: &Settings) -> Vec<String> {
    read_all(&settings.api).err().unwrap_or_default()
}

fn read_all(settings: &ApiSettings) -> Result<Vec<Arc<ApiKey>>, Vec<String>> {
    let mut keys: Vec<Arc<ApiKey>> = Vec::new();
    let mut problems = Vec::new();
    for (i, entry) in settings.keys.iter().enumerate() {
        match read_one(entry) {
            Ok(key) if keys.iter().any(|k| k.name == key.name) => {
                problems.push(format!("api.keys[{i}]: name `{}` is used twice", key.name))
            }
            Ok(key) if keys.iter().any(|k| k.digest == key.digest) => problems.push(format!(
                "api.keys[{i}] ({}): the same key as another entry",
                key.name
            )),
            Ok(key) => keys.push(Arc::new(key)),
            Err(why) => problems.push(format!("api.keys[{i}]: {why}")),
        }
    }
    match problems.is_empty() {
        true => Ok(keys),
        false => Err(problems),
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn read_one(entry: &ApiKeySettings) -> Result<ApiKey, String> {
    if !valid_name(&entry.name) {
        return Err("name: 1 to 64 of A-Z a-z 0-9 . _ -".into());
    }
    let name = &entry.name;
    let mut scopes = Vec::new();
    for word in &entry.scopes {
        match Scope::parse(word) {
            Some(s) if !scopes.contains(&s) => scopes.push(s),
            Some(_) => {}
            None => {
                return Err(format!(
                    "({name}) scopes: `{word}` is not publish, moderate or read"
                ))
            }
        }
    }
    if scopes.is_empty() {
        return Err(format!("({name}) scopes: give at least one"));
    }
    let text = match (entry.key.is_empty(), entry.key_file.is_empty()) {
        (false, true) => entry.key.clone(),
        (true, false) => std::fs::read_to_string(&entry.key_file)
            .map_err(|e| format!("({name}) key_file {}: {e}", entry.key_file))?,
        _ => return Err(format!("({name}) give exactly one of key or key_file")),
    };
    let text = text.trim();
    if !text.starts_with("sha256:") && text.chars().count() < MIN_KEY_CHARS {
        return Err(format!(
            "({name}) key: a plain key must have at least {MIN_KEY_CHARS} characters"
        ));
    }
    let secret = TokenSecret::parse(text).map_err(|e| format!("({name}) key: {e}"))?;
    Ok(ApiKey {
        name: name.as_str().into(),
        scopes,
        digest: secret.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(entries: Vec<ApiKeySettings>) -> ApiSettings {
        ApiSettings {
            idempotency_window: std::time::Duration::from_secs(300),
            max_body_bytes: 16384,
            keys: entries,
        }
    }

    fn entry(name: &str, scopes: &[&str], key: &str) -> ApiKeySettings {
        ApiKeySettings {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            key: key.into(),
            key_file: String::new(),
        }
    }

    #[test]
    fn keys_are_found_by_bearer_value_and_carry_their_scopes() {
        let hashed = format!(
            "sha256:{}",
            digest("second-key-0123456789")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let keys = ApiKeys::new(&settings(vec![
            entry("ci", &["publish"], "first-key-0123456789"),
            entry("desk", &["moderate", "read"], &hashed),
        ]))
        .expect("keys");
        let ci = keys
            .check(Some(b"Bearer first-key-0123456789"))
            .expect("ci");
        assert_eq!(&*ci.name, "ci");
        assert!(ci.may(Scope::Publish) && !ci.may(Scope::Read));
        let desk = keys
            .check(Some(b"bearer second-key-0123456789"))
            .expect("desk");
        assert!(desk.may(Scope::Moderate) && desk.may(Scope::Read));
        for bad in [
            &b"Bearer nope-nope-nope-nope"[..],
            b"Basic first-key-0123456789",
            b"first-key-0123456789",
            b"Bearer \xff",
        ] {
            assert!(keys.check(Some(bad)).is_none());
        }
        assert!(keys.check(None).is_none());
    }

    #[test]
    fn bad_entries_are_named_without_their_key() {
        let e = read_all(&settings(vec![
            entry("ci", &["publish"], "short"),
            entry("bad name", &["read"], "long-enough-key-0123"),
            entry("x", &["write"], "long-enough-key-0123"),
            entry("y", &[], "long-enough-key-0123"),
            entry("z", &["read"], ""),
        ]))
        .expect_err("problems");
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(e
            .iter()
            .all(|p| !p.contains("long-enough") && !p.contains("short`")));
    }
}
