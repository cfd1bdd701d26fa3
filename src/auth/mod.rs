//! Who may connect, and as whom: the Origin policy ([`origin`]), token
//! grants ([`tokens`]) and reserved display names ([`names`]), swapped whole
//! on reload.
//!
//! Tokens are kept only as SHA-256 digests. A presented token is hashed and
//! compared in constant time against every grant, so neither the match nor
//! its position leaks through timing. Digests identify a connection's token
//! later (revocation) without keeping the secret.

mod names;
mod origin;
mod tokens;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use names::ReservedNames;
pub use origin::{OriginPolicy, OriginRule};
pub use tokens::{
    digest, is_loopback, read_tokens_file, Grant, TokenDigest, TokenSecret, TokenSet, DEV_TOKEN,
};

use crate::config::Settings;

/// Why auth settings or a tokens file were refused. Messages name the file,
/// entry or origin, and never contain a token.
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
    #[error("`{origin}`: {problem}")]
    Origin {
        origin: String,
        problem: &'static str,
    },
}

/// The auth state in force; replaced whole on reload.
pub struct Auth {
    tokens: ArcSwap<TokenSet>,
    origins: ArcSwap<OriginPolicy>,
    names: ArcSwap<ReservedNames>,
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
            names: ArcSwap::from_pointee(ReservedNames::new(&settings.auth.reserved_names)),
        })
    }

    /// Swaps in the tokens, origins and reserved names of newly loaded settings.
    pub fn reload(&self, settings: &Settings) -> Result<(), AuthError> {
        let tokens = TokenSet::from_settings(settings)?;
        self.tokens.store(Arc::new(tokens));
        self.origins
            .store(Arc::new(OriginPolicy::from_settings(settings)));
        self.names
            .store(Arc::new(ReservedNames::new(&settings.auth.reserved_names)));
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

    /// The origin policy in force now.
    pub fn origins(&self) -> arc_swap::Guard<Arc<OriginPolicy>> {
        self.origins.load()
    }
}

/// Every problem in the auth settings (tokens, tokens file, origins), each
/// naming its key; never the token itself.
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
    for origin in settings.allowed_origins() {
        if let Err(e) = OriginRule::parse(&origin) {
            p.push(format!("auth.allowed_origins: {e}"));
        }
    }
    p.extend(names::problems(&settings.auth.reserved_names));
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
            .map(|s| {
                (
                    s.0,
                    Arc::new(Grant {
                        rooms: None,
                        read_only: false,
                        loopback_only: false,
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
    fn the_builtin_dev_token_is_for_loopback_clients_only() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for local in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip(local)), "{local}");
        }
        for remote in [
            "10.0.0.1",
            "192.168.1.2",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "0.0.0.0",
            "::",
        ] {
            assert!(!is_loopback(ip(remote)), "{remote}");
        }
        let built_in = Grant {
            rooms: None,
            read_only: false,
            loopback_only: true,
        };
        assert!(built_in.allows_client(ip("127.0.0.1")));
        assert!(!built_in.allows_client(ip("10.1.2.3")));
        let configured = Grant {
            loopback_only: false,
            ..built_in
        };
        assert!(configured.allows_client(ip("10.1.2.3")));

        // Only auth.tokens_file set: the built-in token stays loopback-only,
        // unless the file grants it too (then the file's grant is its grant).
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.toml");
        let settings = |text: &str| {
            std::fs::write(&file, text).unwrap();
            let path = file.to_string_lossy().to_string();
            let sources = crate::config::Sources::from_env([("CHAT__AUTH__TOKENS_FILE", path)]);
            Settings::load(&sources, |_| Vec::new()).unwrap()
        };
        let s = settings("[[tokens]]\ntoken = \"other\"\n");
        assert!(s.auth.builtin_dev_token);
        let set = TokenSet::from_settings(&s).unwrap();
        assert!(set.find(&digest(DEV_TOKEN)).unwrap().loopback_only);
        assert!(!set.find(&digest("other")).unwrap().loopback_only);
        assert!(set.has_loopback_only(), "the startup warning is due");
        let s = settings("[[tokens]]\ntoken = \"dev-token\"\nrooms = [\"dev\"]\n");
        let set = TokenSet::from_settings(&s).unwrap();
        let grant = set.find(&digest(DEV_TOKEN)).unwrap();
        assert!(!grant.loopback_only && grant.allows_room("dev") && !grant.allows_room("lobby"));
        assert_eq!(set.len(), 1);
        assert!(
            !set.has_loopback_only(),
            "no warning: the file configured it"
        );
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
        assert!(grants[0].1.read_only);
        assert!(grants[0].1.allows_room("ops") && !grants[0].1.allows_room("lobby"));
    }
}
