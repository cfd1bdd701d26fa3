//! Who may connect and what they may do: the Origin policy ([`origin`]),
//! static tokens ([`tokens`]), JSON Web Tokens ([`jwt`], keys from a JWKS in
//! [`jwks`]), and the one [`Grant`] they all produce ([`grant`]). Each part
//! is swapped whole on reload.
//!
//! Static tokens are kept only as SHA-256 digests. A presented token is
//! hashed and compared in constant time against every grant, so neither the
//! match nor its position leaks through timing. Digests identify a
//! connection's token later (revocation) without keeping the secret; a JWT
//! connection keeps the id of the key that verified it, for the same reason.

pub mod grant;
pub mod jwks;
pub mod jwt;
mod origin;
mod tokens;

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

pub use grant::{Grant, Perm, RoomSet};
pub use jwt::{JwtFailure, KeyId};
pub use origin::{OriginPolicy, OriginRule};
pub use tokens::{digest, read_tokens_file, TokenDigest, TokenSecret, TokenSet};

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
}

impl Auth {
    /// Builds from validated settings.
    pub fn new(settings: &Settings) -> Result<Auth, AuthError> {
        Ok(Auth {
            tokens: ArcSwap::from_pointee(TokenSet::from_settings(settings)?),
            origins: ArcSwap::from_pointee(OriginPolicy::from_settings(settings)),
            jwt: Jwt::new(jwt_config(settings)?),
        })
    }

    /// Swaps in the tokens, JWT keys and origins of newly loaded settings
    /// (all or nothing).
    pub fn reload(&self, settings: &Settings) -> Result<(), AuthError> {
        let tokens = TokenSet::from_settings(settings)?;
        let jwt = jwt_config(settings)?;
        self.tokens.store(Arc::new(tokens));
        self.jwt.reload(jwt);
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
/// origins), each naming its key; never the token or secret itself.
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
    p
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
            .map(|s| (s.0, Arc::new(Grant::guest())))
            .collect(),
        );
        assert!(set.find(&digest("first")).is_some());
        assert!(set.find(&digest("second")).is_some());
        assert!(set.find(&digest("third")).is_none());
        assert!(TokenSecret::parse("sha256:abc").is_err());
    }

    #[test]
    fn tokens_file_errors_never_quote_the_token() {
        let e = tokens::parse_tokens_file(
            "tokens.toml",
            "[[tokens]]\ntoken = \"hunter2\"\nroms = [\"a\"]\n",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let grants = tokens::parse_tokens_file(
            "tokens.toml",
            "[[tokens]]\ntoken = \"t\"\nrooms = [\"ops\"]\nread_only = true\n",
        )
        .unwrap();
        assert!(!grants[0].1.can_write());
        assert!(grants[0].1.admits("ops") && !grants[0].1.admits("lobby"));
    }

    #[test]
    fn tokens_file_entries_name_users_and_take_perm() {
        let grants = tokens::parse_tokens_file(
            "t.toml",
            "[[tokens]]\ntoken = \"a\"\nuser = \"u-1\"\nname = \"Ana\"\nperm = [\"read\", \"moderate\"]\n\
             rooms = [\"support-*\"]\n[[tokens]]\ntoken = \"b\"\nuser = \"bo\"\n[[tokens]]\ntoken = \"c\"\n",
        )
        .unwrap();
        let (a, b, c) = (&grants[0].1, &grants[1].1, &grants[2].1);
        assert_eq!(
            (a.user.as_deref(), a.name.as_deref()),
            (Some("u-1"), Some("Ana"))
        );
        assert!(a.admits("support-1") && !a.can_write() && a.perm.contains(Perm::MODERATE));
        assert_eq!(
            b.name.as_deref(),
            Some("bo"),
            "the name defaults to the user"
        );
        assert_eq!(
            (c.user.as_deref(), c.name.as_deref()),
            (None, None),
            "a guest"
        );
        for bad in [
            "perm = [\"read\"]\nread_only = true",
            "perm = [\"root\"]",
            "name = \"Ana\"",
            "user = \"\"",
            "rooms = [\"a*b\"]",
        ] {
            let text = format!("[[tokens]]\ntoken = \"hunter2\"\n{bad}\n");
            let e = tokens::parse_tokens_file("t.toml", &text).unwrap_err();
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }
}
