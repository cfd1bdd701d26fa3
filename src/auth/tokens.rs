//! Token grants: configured tokens kept only as SHA-256 digests, the tokens
//! file, and the constant-time lookup of a presented token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::grant::{display_name, valid_user, Grant, Perm, RoomSet};
use super::AuthError;
use crate::config::Settings;

/// The well-known development token, in force when no token is configured
/// (`config/default.toml`). Everyone who read the README knows it, so it is
/// accepted only from the machine itself (see [`Grant::loopback_only`]).
pub const DEV_TOKEN: &str = "dev-token";

/// SHA-256 of a token: what we keep instead of the token.
pub type TokenDigest = [u8; 32];

/// A token as written in settings: plain, or `sha256:<hex>`.
pub struct TokenSecret(pub TokenDigest);

impl TokenSecret {
    /// Parses a configured token. Errors never include the token itself.
    pub fn parse(text: &str) -> Result<TokenSecret, AuthError> {
        let text = text.trim();
        if let Some(hex) = text.strip_prefix("sha256:") {
            let bytes = decode_hex(hex)
                .filter(|b| b.len() == 32)
                .ok_or(AuthError::BadDigest)?;
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&bytes);
            Ok(TokenSecret(digest))
        } else if text.is_empty() {
            Err(AuthError::EmptyToken)
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
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// 127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6 (`::ffff:127.x.y.z`,
/// as a dual-stack listener reports it).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
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
    /// The user this token identifies; absent: a guest token.
    user: Option<String>,
    /// The display name its connections get (default: the user's id).
    name: Option<String>,
    /// Like the JWT claim; `read_only = true` is `perm = ["read"]`.
    perm: Option<Vec<String>>,
}

impl TokenEntry {
    fn grant(&self) -> Result<Grant, AuthError> {
        let field = |field, problem| AuthError::Field { field, problem };
        let perm = match (&self.perm, self.read_only) {
            (Some(_), true) => {
                return Err(field("perm", "give perm or read_only, not both"));
            }
            (Some(words), false) => Perm::parse(words).map_err(|p| field("perm", p))?,
            (None, true) => Perm::READ,
            (None, false) => Perm::DEFAULT,
        };
        let rooms = match &self.rooms {
            Some(r) => Some(RoomSet::parse(r).map_err(|p| field("rooms", p))?),
            None => None,
        };
        if let Some(user) = &self.user {
            if !valid_user(user) {
                return Err(field("user", "1 to 64 characters, no control characters"));
            }
        }
        let name = match &self.name {
            Some(n) => Some(display_name(n).ok_or(field(
                "name",
                "letters, digits, `_`, `-` and spaces, at most 24 characters",
            ))?),
            None => self.user.as_deref().and_then(display_name),
        };
        if name.is_some() && self.user.is_none() {
            return Err(field(
                "name",
                "only with `user` (guests choose their own name)",
            ));
        }
        Ok(Grant {
            user: self.user.as_deref().map(Arc::from),
            name,
            rooms,
            perm,
            expires: None,
            loopback_only: false,
        })
    }
}

/// Reads a tokens file (TOML: `[[tokens]] token, rooms, read_only, user,
/// name, perm`).
pub fn read_tokens_file(path: &str) -> Result<Vec<(TokenDigest, Grant)>, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|e| AuthError::Unreadable {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    parse_tokens_file(path, &text)
}

pub(super) fn parse_tokens_file(
    path: &str,
    text: &str,
) -> Result<Vec<(TokenDigest, Grant)>, AuthError> {
    // toml's errors quote the offending line, which may be a token: say where, not what.
    let file: TokensFile = toml::from_str(text).map_err(|e| AuthError::TokensFile {
        path: path.to_string(),
        line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
        reason: e.message().to_string(),
    })?;
    file.tokens
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let in_entry = |e| AuthError::TokenEntry {
                path: path.to_string(),
                index,
                problem: Box::new(e),
            };
            let secret = TokenSecret::parse(&entry.token).map_err(in_entry)?;
            let grant = entry.grant().map_err(in_entry)?;
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
    /// Builds the set from settings (plain list and tokens file). The
    /// tokens of the embedded defaults (the built-in [`DEV_TOKEN`], when no
    /// layer configured `auth.tokens`) are loopback-only.
    pub fn from_settings(settings: &Settings) -> Result<TokenSet, AuthError> {
        let file = match settings.auth.tokens_file.is_empty() {
            true => Vec::new(),
            false => read_tokens_file(&settings.auth.tokens_file)?,
        };
        let mut grants = Vec::new();
        for token in settings.auth.tokens.iter().filter(|t| !t.trim().is_empty()) {
            let digest = TokenSecret::parse(token)?.0;
            // A tokens file that grants the built-in token configures it:
            // its grant, not the loopback-only one, is the token's.
            if settings.auth.builtin_dev_token && file.iter().any(|(d, _)| *d == digest) {
                continue;
            }
            let all = Grant {
                loopback_only: settings.auth.builtin_dev_token,
                ..Grant::guest()
            };
            grants.push((digest, Arc::new(all)));
        }
        for (digest, grant) in file {
            grants.push((digest, Arc::new(grant)));
        }
        Ok(TokenSet::new(grants))
    }

    pub(super) fn new(grants: Vec<(TokenDigest, Arc<Grant>)>) -> TokenSet {
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

    /// Whether a grant is for loopback clients only (the built-in token).
    pub fn has_loopback_only(&self) -> bool {
        self.grants.iter().any(|(_, g)| g.loopback_only)
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
