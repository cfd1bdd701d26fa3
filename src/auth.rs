//! Who may connect: the Origin policy and token grants, swapped whole on reload.
//!
//! Tokens are kept only as SHA-256 digests. A presented token is hashed and
//! compared in constant time against every grant, so neither the match nor
//! its position leaks through timing. Digests identify a connection's token
//! later (revocation) without keeping the secret.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Settings;

/// SHA-256 of a token: what we keep instead of the token.
pub type TokenDigest = [u8; 32];

/// A token as written in settings: plain, or `sha256:<hex>`.
pub struct TokenSecret(pub TokenDigest);

impl TokenSecret {
    /// Parses a configured token. Errors never include the token itself.
    pub fn parse(text: &str) -> Result<TokenSecret, String> {
        let text = text.trim();
        if let Some(hex) = text.strip_prefix("sha256:") {
            let bytes = decode_hex(hex)
                .filter(|b| b.len() == 32)
                .ok_or_else(|| "a sha256: token must be 64 hex digits".to_string())?;
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&bytes);
            Ok(TokenSecret(digest))
        } else if text.is_empty() {
            Err("a token is empty".into())
        } else {
            Ok(TokenSecret(digest(text)))
        }
    }
}

/// The SHA-256 of a presented token.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Rooms it may join; `None` is every room.
    pub rooms: Option<HashSet<String>>,
    /// Receives only; every message it sends gets `forbidden`.
    pub read_only: bool,
}

impl Grant {
    /// Whether this grant lets a connection into `room`.
    pub fn allows_room(&self, room: &str) -> bool {
        self.rooms.as_ref().is_none_or(|r| r.contains(room))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    rooms: Option<Vec<String>>,
    #[serde(default)]
    read_only: bool,
}

/// Reads a tokens file (TOML: `[[tokens]] token, rooms, read_only`).
pub fn read_tokens_file(path: &str) -> Result<Vec<(TokenDigest, Grant)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse_tokens_file(&text).map_err(|e| format!("{path}: {e}"))
}

fn parse_tokens_file(text: &str) -> Result<Vec<(TokenDigest, Grant)>, String> {
    // toml's errors quote the offending line, which may be a token: say where, not what.
    let file: TokensFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        format!("not a valid tokens file (line {at}): {}", e.message())
    })?;
    file.tokens
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let secret =
                TokenSecret::parse(&entry.token).map_err(|e| format!("tokens[{i}]: {e}"))?;
            let grant = Grant {
                rooms: entry.rooms.map(|r| r.into_iter().collect()),
                read_only: entry.read_only,
            };
            Ok((secret.0, grant))
        })
        .collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The tokens in force.
#[derive(Debug, Default)]
pub struct TokenSet {
    grants: Vec<(TokenDigest, Arc<Grant>)>,
    /// The same grants by digest, for the per-message check of a connection
    /// that was already admitted (its digest is ours, not a guess).
    by_digest: HashMap<TokenDigest, Arc<Grant>>,
}

impl TokenSet {
    /// Builds the set from settings (plain list and tokens file).
    pub fn from_settings(settings: &Settings) -> Result<TokenSet, String> {
        let mut grants = Vec::new();
        for token in settings.auth.tokens.iter().filter(|t| !t.trim().is_empty()) {
            let all = Grant {
                rooms: None,
                read_only: false,
            };
            grants.push((TokenSecret::parse(token)?.0, Arc::new(all)));
        }
        if !settings.auth.tokens_file.is_empty() {
            for (digest, grant) in read_tokens_file(&settings.auth.tokens_file)? {
                grants.push((digest, Arc::new(grant)));
            }
        }
        Ok(TokenSet::new(grants))
    }

    fn new(grants: Vec<(TokenDigest, Arc<Grant>)>) -> TokenSet {
        let mut by_digest = HashMap::new();
        for (digest, grant) in &grants {
            by_digest.entry(*digest).or_insert_with(|| grant.clone());
        }
        TokenSet { grants, by_digest }
    }

    /// The grant of an admitted connection's token, if it is still configured.
    pub fn grant_for(&self, token: &TokenDigest) -> Option<&Arc<Grant>> {
        self.by_digest.get(token)
    }

    /// Finds the grant for a presented token's digest, in constant time
    /// over every configured token.
    pub fn find(&self, presented: &TokenDigest) -> Option<Arc<Grant>> {
        let mut found = None;
        for (digest, grant) in &self.grants {
            if bool::from(digest.ct_eq(presented)) && found.is_none() {
                found = Some(grant.clone());
            }
        }
        found
    }

    /// Number of tokens (never their values).
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

/// One allowed origin: exact, or `scheme://*.domain[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    Exact(String),
    /// Origins `prefix` + one or more labels + `suffix`.
    Wildcard {
        prefix: String,
        suffix: String,
    },
}

impl OriginRule {
    /// Parses a configured origin: `scheme://host[:port]`, no path.
    pub fn parse(text: &str) -> Result<OriginRule, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an origin like https://chat.example.com"))?;
        if !matches!(scheme, "http" | "https") {
            return Err(format!("`{text}`: scheme must be http or https"));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!("`{text}`: an origin has no path, query or user"));
        }
        if rest.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("`{text}`: browsers send origins in lower case"));
        }
        match rest.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                Ok(OriginRule::Wildcard {
                    prefix: format!("{scheme}://"),
                    suffix: format!(".{domain}"),
                })
            }
            Some(_) => Err(format!("`{text}`: a wildcard is `scheme://*.domain`")),
            None if rest.contains('*') => Err(format!("`{text}`: `*` only as `*.domain`")),
            None => Ok(OriginRule::Exact(text.to_string())),
        }
    }

    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginRule::Exact(exact) => exact == origin,
            OriginRule::Wildcard { prefix, suffix } => origin
                .strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                .is_some_and(|labels| {
                    !labels.is_empty()
                        && labels.split('.').all(|l| {
                            !l.is_empty()
                                && l.bytes().all(|b| {
                                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
                                })
                        })
                }),
        }
    }
}

/// Which `Origin` headers may open a WebSocket.
#[derive(Debug, Default)]
pub struct OriginPolicy {
    rules: Vec<OriginRule>,
    allow_missing: bool,
}

impl OriginPolicy {
    /// Builds the policy from settings (validated at load).
    pub fn from_settings(settings: &Settings) -> OriginPolicy {
        OriginPolicy {
            rules: settings
                .allowed_origins()
                .iter()
                .filter_map(|o| OriginRule::parse(o).ok())
                .collect(),
            allow_missing: settings.auth.allow_missing_origin,
        }
    }

    /// Exact, case-sensitive match: browsers always send lower case.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            None => self.allow_missing,
            Some(o) => self.rules.iter().any(|r| r.matches(o)),
        }
    }
}

/// The auth state in force; replaced whole on reload.
pub struct Auth {
    tokens: ArcSwap<TokenSet>,
    origins: ArcSwap<OriginPolicy>,
}

impl Auth {
    /// Builds from validated settings.
    pub fn new(settings: &Settings) -> Result<Auth, String> {
        Ok(Auth {
            tokens: ArcSwap::from_pointee(TokenSet::from_settings(settings)?),
            origins: ArcSwap::from_pointee(OriginPolicy::from_settings(settings)),
        })
    }

    /// Swaps in the tokens and origins of newly loaded settings.
    pub fn reload(&self, settings: &Settings) -> Result<(), String> {
        let tokens = TokenSet::from_settings(settings)?;
        self.tokens.store(Arc::new(tokens));
        self.origins
            .store(Arc::new(OriginPolicy::from_settings(settings)));
        Ok(())
    }

    /// The tokens in force now.
    pub fn tokens(&self) -> arc_swap::Guard<Arc<TokenSet>> {
        self.tokens.load()
    }

    /// The origin policy in force now.
    pub fn origins(&self) -> arc_swap::Guard<Arc<OriginPolicy>> {
        self.origins.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_lookalikes_are_rejected() {
        let policy = OriginPolicy {
            rules: vec![OriginRule::parse("http://localhost:8080").unwrap()],
            allow_missing: false,
        };
        assert!(policy.allows(Some("http://localhost:8080")));
        for bad in [
            "http://localhost:8080.evil.example",
            "HTTP://LOCALHOST:8080",
            "http://localhost:8080/",
            "null",
            "http://localhost",
            "https://localhost:8080",
        ] {
            assert!(!policy.allows(Some(bad)), "{bad}");
        }
        assert!(!policy.allows(None));
    }

    #[test]
    fn wildcard_origins_match_subdomains_only() {
        let rule = OriginRule::parse("https://*.example.com").unwrap();
        assert!(rule.matches("https://chat.example.com"));
        assert!(rule.matches("https://a.b.example.com"));
        for bad in [
            "https://example.com",
            "https://.example.com",
            "https://evil.com/.example.com",
            "https://a.example.com.evil.com",
            "http://chat.example.com",
            "https://a_b.example.com",
        ] {
            assert!(!rule.matches(bad), "{bad}");
        }
        assert!(OriginRule::parse("https://*").is_err());
        assert!(OriginRule::parse("chat.example.com").is_err());
        assert!(OriginRule::parse("https://a.example.com/").is_err());
    }

    #[test]
    fn tokens_match_plain_and_hashed_forms() {
        let hashed = format!(
            "sha256:{}",
            digest("second")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let set = TokenSet::new(
            [
                TokenSecret::parse("first").unwrap(),
                TokenSecret::parse(&hashed).unwrap(),
            ]
            .into_iter()
            .map(|s| {
                (
                    s.0,
                    Arc::new(Grant {
                        rooms: None,
                        read_only: false,
                    }),
                )
            })
            .collect(),
        );
        assert!(set.find(&digest("first")).is_some());
        assert!(set.find(&digest("second")).is_some());
        assert!(set.find(&digest("third")).is_none());
        assert!(TokenSecret::parse("sha256:abc").is_err());
    }

    #[test]
    fn tokens_file_errors_never_quote_the_token() {
        let e = parse_tokens_file("[[tokens]]\ntoken = \"hunter2\"\nroms = [\"a\"]\n").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let grants =
            parse_tokens_file("[[tokens]]\ntoken = \"t\"\nrooms = [\"ops\"]\nread_only = true\n")
                .unwrap();
        assert!(grants[0].1.read_only);
        assert!(grants[0].1.allows_room("ops") && !grants[0].1.allows_room("lobby"));
    }
}
