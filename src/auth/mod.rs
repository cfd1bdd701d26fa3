//! Who may connect and what they may do: the Origin policy ([`origin`]),
//! static tokens ([`tokens`]), JSON Web Tokens ([`jwt`], keys from a JWKS in
//! [`jwks`]), the one [`Grant`] they all produce ([`grant`]), the
//! display names guests may not take ([`names`]), and what the browser page
//! is told ([`page`]: where it fetches a fresh token). Each part is swapped
//! whole on reload.
//!
//! Static tokens are kept only as SHA-256 digests. A presented token is
//! hashed and compared in constant time against every grant, so neither the
//! match nor its position leaks through timing. Digests identify a
//! connection's token later (revocation) without keeping the secret; a JWT
//! connection keeps the id of the key that verified it, for the same reason.

pub mod api_keys;
pub mod grant;
pub mod jwks;
pub mod jwt;
mod names;
mod origin;
pub mod page;
mod tokens;

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

pub use grant::{Grant, Perm, RoomSet};
pub use jwt::{JwtFailure, KeyId};
pub use names::ReservedNames;
pub use origin::{OriginPolicy, OriginRule};
pub use page::PageConfig;
pub use tokens::{
    digest, is_loopback, read_tokens_file, TokenDigest, TokenSecret, TokenSet, DEV_TOKEN,
};

use crate::config::Settings;
use jwt::{Jwt, JwtConfig};

/// Why auth settings or a tokens file were refused. Messages name the file,
/// entry or origin, and never contain a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a token is empty")]
    EmptyToken,
    #[error("a sha256: token must be 64 hex digits")]
    BadDigest,
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: not a valid tokens file (line {line}): {reason}")]
    TokensFile {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: tokens[{index}]: {problem}")]
    TokenEntry {
        path: String,
        index: usize,
        problem: Box<AuthError>,
    },
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        problem: &'static str,
    },
    #[error("`{origin}`: {problem}")]
    Origin {
        origin: String,
        problem: &'static str,
    },
    #[error("auth.jwt.keys[{index}]: {problem}")]
    JwtKey { index: usize, problem: String },
    #[error("auth.jwt.jwks_url: must start with http:// or https://")]
    JwksUrl,
}

/// What a connection authenticated with, kept for its whole life and
/// checked against the auth in force at every action.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A static token, by digest: its grant is the one configured now.
    Static(TokenDigest),
    /// A verified JWT: its claims are its grant, valid while the key that
    /// verified it is configured and until its `exp`.
    Jwt(Arc<JwtCredential>),
}

/// A verified JWT's key and grant.
#[derive(Debug)]
pub struct JwtCredential {
    pub key: KeyId,
    pub grant: Arc<Grant>,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a configured static token (and not tried as a JWT).
    Unknown,
    /// Tried as a JWT and refused for this reason.
    Jwt(JwtFailure),
}

/// Why a connection's credential no longer allows anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapsed {
    /// The static token, or the JWT's key, is no longer configured (1008).
    Revoked,
    /// The JWT's `exp` (plus leeway) has passed (4001).
    Expired,
}

/// The auth state in force; each part replaced whole on reload.
pub struct Auth {
    tokens: ArcSwap<TokenSet>,
    origins: ArcSwap<OriginPolicy>,
    pub jwt: Jwt,
    names: ArcSwap<ReservedNames>,
    page: ArcSwap<PageConfig>,
}

impl Auth {
    /// Builds from validated settings.
    pub fn new(settings: &Settings) -> Result<Auth, AuthError> {
        let tokens = TokenSet::from_settings(settings)?;
        if tokens.has_loopback_only() {
            tracing::warn!(
                "no token configured: the built-in `{DEV_TOKEN}` is accepted only from \
                 loopback clients (127.0.0.0/8, ::1). Set CHAT_TOKEN, auth.tokens or \
                 auth.tokens_file to accept clients from other addresses"
            );
        }
        Ok(Auth {
            tokens: ArcSwap::from_pointee(tokens),
            origins: ArcSwap::from_pointee(OriginPolicy::from_settings(settings)),
            jwt: Jwt::new(jwt_config(settings)?),
            names: ArcSwap::from_pointee(ReservedNames::new(&settings.auth.reserved_names)),
            page: ArcSwap::from_pointee(PageConfig::new(&settings.auth.page_token_url)),
        })
    }

    /// Swaps in the tokens, JWT keys, origins, reserved names and page
    /// settings of newly loaded settings (all or nothing).
    pub fn reload(&self, settings: &Settings) -> Result<(), AuthError> {
        let tokens = TokenSet::from_settings(settings)?;
        let jwt = jwt_config(settings)?;
        self.tokens.store(Arc::new(tokens));
        self.jwt.reload(jwt);
        self.origins
            .store(Arc::new(OriginPolicy::from_settings(settings)));
        self.names
            .store(Arc::new(ReservedNames::new(&settings.auth.reserved_names)));
        self.page
            .store(Arc::new(PageConfig::new(&settings.auth.page_token_url)));
        Ok(())
    }

    /// The display name a guest connection gets for the `name` it asked
    /// for: cleaned, and `guest` instead of a reserved name.
    pub fn guest_name(&self, raw: Option<&str>) -> String {
        self.names.load().guest_name(raw)
    }

    /// The tokens in force now.
    pub fn tokens(&self) -> arc_swap::Guard<Arc<TokenSet>> {
        self.tokens.load()
    }

    /// What the browser page is told now (`/page-config.json`).
    pub fn page(&self) -> arc_swap::Guard<Arc<PageConfig>> {
        self.page.load()
    }

    /// The origin policy in force now.
    pub fn origins(&self) -> arc_swap::Guard<Arc<OriginPolicy>> {
        self.origins.load()
    }

    /// Checks a presented token: a configured static token first (so a
    /// static token of any shape keeps working), then, when JWTs are on and
    /// it has a JWT's shape, as a JWT.
    pub fn authenticate(&self, token: &str) -> Result<(Credential, Arc<Grant>), Refusal> {
        let presented = digest(token);
        if let Some(grant) = self.tokens.load().find(&presented) {
            return Ok((Credential::Static(presented), grant));
        }
        if !self.jwt.enabled() || !jwt::looks_like_jwt(token) {
            return Err(Refusal::Unknown);
        }
        let verified = self
            .jwt
            .verify(token, SystemTime::now())
            .map_err(Refusal::Jwt)?;
        let grant = Arc::new(verified.grant);
        let credential = JwtCredential {
            key: verified.key,
            grant: grant.clone(),
        };
        Ok((Credential::Jwt(Arc::new(credential)), grant))
    }

    /// Runs `f` on the grant in force now for `credential`: the configured
    /// static token's, or the JWT's while its key is configured and it has
    /// not expired. Static tokens pay what they always did: one lookup.
    pub fn current<T>(
        &self,
        credential: &Credential,
        f: impl FnOnce(&Grant) -> T,
    ) -> Result<T, Lapsed> {
        match credential {
            Credential::Static(token) => self
                .tokens
                .load()
                .grant_for(token)
                .map(|g| f(g))
                .ok_or(Lapsed::Revoked),
            Credential::Jwt(jwt) => {
                if !self.jwt.knows(&jwt.key) {
                    return Err(Lapsed::Revoked);
                }
                if jwt.grant.expired(SystemTime::now(), self.jwt.leeway()) {
                    return Err(Lapsed::Expired);
                }
                Ok(f(&jwt.grant))
            }
        }
    }
}

fn jwt_config(settings: &Settings) -> Result<JwtConfig, AuthError> {
    JwtConfig::from_settings(&settings.auth.jwt).map_err(|problems| {
        problems.into_iter().next().unwrap_or(AuthError::Field {
            field: "auth.jwt",
            problem: "invalid",
        })
    })
}

/// Every problem in the auth settings (tokens, tokens file, JWT keys,
/// origins, reserved names, the page's token URL), each naming its key;
/// never the token or secret itself.
pub fn problems(settings: &Settings) -> Vec<String> {
    let mut p = Vec::new();
    for token in &settings.auth.tokens {
        if let Err(e) = TokenSecret::parse(token) {
            p.push(format!("auth.tokens: {e}"));
        }
    }
    if !settings.auth.tokens_file.is_empty() {
        if let Err(e) = read_tokens_file(&settings.auth.tokens_file) {
            p.push(format!("auth.tokens_file: {e}"));
        }
    }
    if let Err(problems) = JwtConfig::from_settings(&settings.auth.jwt) {
        p.extend(problems.iter().map(|e| match e {
            AuthError::Unreadable { .. } => format!("auth.jwt.jwks_file: {e}"),
            _ => e.to_string(),
        }));
    }
    for origin in settings.allowed_origins() {
        if let Err(e) = OriginRule::parse(&origin) {
            p.push(format!("auth.allowed_origins: {e}"));
        }
    }
    p.extend(names::problems(&settings.auth.reserved_names));
    p.extend(page::problems(&settings.auth.page_token_url));
    p
}

#[cfg(test)]
mod tests;
