//! JSON Web Tokens: the keys in force ([`keys`]), read from the settings
//! by [`JwtConfig`], the claims ([`claims`]), and [`Jwt::verify`], which turns a token into a [`Grant`] or a
//! [`JwtFailure`] from a closed set.
//!
//! Keys come from the settings (`[[auth.jwt.keys]]`, `auth.jwt.jwks_file`)
//! and from a JWKS URL (kept fresh by the server, see `crate::auth::jwks`);
//! each set is swapped whole. A token's `alg` and `kid` only pick among the
//! keys that exist: `alg: none` and unconfigured algorithms have no key.

pub mod claims;
mod config;
pub mod keys;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use base64::Engine;
use serde::Deserialize;
use tokio::sync::Notify;

pub use claims::Rules;
pub use config::JwtConfig;
pub use keys::{Alg, Key, KeyError, KeyId, KeyIndex, Lookup};

use super::grant::Grant;

/// Why a token that looked like a JWT was refused (the `reason` label of
/// `wschat_jwt_failures_total`). Expired and not-yet-valid are apart from
/// the rest: a client fixes those with a new token, not a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtFailure {
    Expired,
    NotYetValid,
    BadSignature,
    UnknownKid,
    /// `alg: none`, an algorithm ws-chat does not verify or that has no key
    /// configured, or a `kid` whose key is for another algorithm.
    Algorithm,
    Audience,
    Issuer,
    /// Not three base64url parts, or a header or payload that is not JSON.
    Malformed,
    /// A good signature, but claims missing or of the wrong type.
    Claims,
}

impl JwtFailure {
    pub const ALL: [JwtFailure; 9] = [
        JwtFailure::Expired,
        JwtFailure::NotYetValid,
        JwtFailure::BadSignature,
        JwtFailure::UnknownKid,
        JwtFailure::Algorithm,
        JwtFailure::Audience,
        JwtFailure::Issuer,
        JwtFailure::Malformed,
        JwtFailure::Claims,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtFailure::Expired => "expired",
            JwtFailure::NotYetValid => "not_yet_valid",
            JwtFailure::BadSignature => "bad_signature",
            JwtFailure::UnknownKid => "unknown_kid",
            JwtFailure::Algorithm => "algorithm",
            JwtFailure::Audience => "audience",
            JwtFailure::Issuer => "issuer",
            JwtFailure::Malformed => "malformed",
            JwtFailure::Claims => "claims",
        }
    }
}

/// A token that passed: the key that verified it and what it grants.
pub struct Verified {
    pub key: KeyId,
    pub grant: Grant,
}

/// The JWT keys and rules in force.
#[derive(Default)]
pub struct Jwt {
    config: ArcSwap<JwtConfig>,
    /// Keys from the JWKS URL, replaced whole by each successful read.
    remote: ArcSwap<KeyIndex>,
    /// Notified when a token names a `kid` no key has: the JWKS refresher
    /// reads the URL again (rate-limited).
    pub refresh_wanted: Notify,
}

/// The JOSE header fields ws-chat reads before choosing a key.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Whether `token` has the shape of a JWS compact serialization: three
/// base64url parts joined by two dots (the signature may be empty, as with
/// `alg: none`, so that such tokens are refused as JWTs).
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let shape = (parts.next(), parts.next(), parts.next(), parts.next());
    let b64 = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    matches!(shape, (Some(h), Some(p), Some(s), None)
        if !h.is_empty() && !p.is_empty() && b64(h) && b64(p) && b64(s))
}

impl Jwt {
    pub fn new(config: JwtConfig) -> Jwt {
        Jwt {
            config: ArcSwap::from_pointee(config),
            ..Jwt::default()
        }
    }

    /// Swaps in newly loaded settings. A changed JWKS URL asks for a read
    /// of the new one (whose keys then replace the old URL's).
    pub fn reload(&self, config: JwtConfig) {
        let url_changed = self.config.load().jwks_url != config.jwks_url;
        self.config.store(Arc::new(config));
        if url_changed {
            self.refresh_wanted.notify_one();
        }
    }

    /// Whether JWTs are accepted.
    pub fn enabled(&self) -> bool {
        self.config.load().enabled
    }

    /// The JWKS URL in force, if any.
    pub fn jwks_url(&self) -> Option<String> {
        self.config.load().jwks_url.clone()
    }

    /// Replaces the keys read from the JWKS URL; whether the set changed.
    pub fn set_remote(&self, keys: KeyIndex) -> bool {
        let changed = self.remote.load().ids() != keys.ids();
        self.remote.store(Arc::new(keys));
        changed
    }

    /// How many keys the JWKS URL gave.
    pub fn remote_len(&self) -> usize {
        self.remote.load().len()
    }

    /// The clock skew allowed on `exp`.
    pub fn leeway(&self) -> Duration {
        self.config.load().rules.leeway
    }

    /// Whether the key with this id is still configured (per message).
    pub fn knows(&self, key: &KeyId) -> bool {
        self.config.load().keys.contains(key) || self.remote.load().contains(key)
    }

    /// Verifies a token at `now`: header, key, signature, then claims.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Verified, JwtFailure> {
        if !looks_like_jwt(token) {
            return Err(JwtFailure::Malformed);
        }
        let header = token.split('.').next().unwrap_or_default();
        let header: Header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|json: Vec<u8>| serde_json::from_slice(&json).ok())
            .ok_or(JwtFailure::Malformed)?;
        let alg = Alg::parse(&header.alg).ok_or(JwtFailure::Algorithm)?;
        let config = self.config.load();
        let remote = self.remote.load();
        let kid = header.kid.as_deref();
        let key = match (config.keys.lookup(alg, kid), remote.lookup(alg, kid)) {
            (Lookup::Found(k), _) | (_, Lookup::Found(k)) => k,
            (Lookup::WrongAlg, _) | (_, Lookup::WrongAlg) => return Err(JwtFailure::Algorithm),
            // A JWKS brings public keys only: no HMAC key will ever come.
            (Lookup::NoAlg, Lookup::NoAlg)
                if config.jwks_url.is_none() || alg.family() == keys::Family::Hmac =>
            {
                return Err(JwtFailure::Algorithm)
            }
            _ => {
                if config.jwks_url.is_some() {
                    self.refresh_wanted.notify_one();
                }
                return Err(JwtFailure::UnknownKid);
            }
        };
        let mut validation = jsonwebtoken::Validation::new(alg.jwt());
        // Time, audience and issuer are checked in `claims`, where each
        // failure keeps its own reason.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key.decoding,
            &validation,
        )
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => JwtFailure::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    JwtFailure::Algorithm
                }
                _ => JwtFailure::Malformed,
            }
        })?;
        let grant = claims::grant(data.claims, &config.rules, now)?;
        Ok(Verified { key: key.id, grant })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(kid: Option<&str>, secret: &[u8]) -> Key {
        Key::secret(Alg::HS256, kid.map(str::to_string), secret).expect("key")
    }

    fn token(kid: Option<&str>, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = kid.map(str::to_string);
        let claims = serde_json::json!({"sub": "u", "exp": 4_000_000_000u64});
        let key = jsonwebtoken::EncodingKey::from_secret(secret).expect("secret");
        jsonwebtoken::encode(&header, &claims, &key).expect("sign")
    }

    #[test]
    fn the_shape_of_a_jwt() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln") && looks_like_jwt("eyJh.eyJz."));
        for not in [
            "",
            "a.b",
            "a.b.c.d",
            ".b.c",
            "a..c",
            "a.b.c=",
            "a b.c.d",
            "dev-token",
        ] {
            assert!(!looks_like_jwt(not), "{not}");
        }
    }

    #[test]
    fn secrets_are_chosen_by_kid_and_alg_only_picks_among_keys() {
        let (a, b) = (&[b'a'; 32][..], &[b'b'; 32][..]);
        let jwt = Jwt::new(JwtConfig {
            enabled: true,
            keys: KeyIndex::new(vec![hs(Some("a"), a), hs(Some("b"), b)]),
            ..JwtConfig::default()
        });
        let now = SystemTime::now();
        let on_a = jwt.verify(&token(Some("a"), a, jsonwebtoken::Algorithm::HS256), now);
        let on_b = jwt.verify(&token(Some("b"), b, jsonwebtoken::Algorithm::HS256), now);
        let (on_a, on_b) = (on_a.expect("a"), on_b.expect("b"));
        assert_ne!(on_a.key, on_b.key);
        assert!(jwt.knows(&on_a.key));
        let failure = |t: String| jwt.verify(&t, now).err();
        use jsonwebtoken::Algorithm::{HS256, HS384};
        assert_eq!(
            failure(token(Some("a"), b, HS256)),
            Some(JwtFailure::BadSignature)
        );
        assert_eq!(
            failure(token(Some("c"), a, HS256)),
            Some(JwtFailure::UnknownKid)
        );
        assert_eq!(failure(token(None, a, HS256)), Some(JwtFailure::UnknownKid));
        assert_eq!(
            failure(token(Some("a"), a, HS384)),
            Some(JwtFailure::Algorithm)
        );
        assert!(
            Key::secret(Alg::HS256, None, &[b'x'; 31]).is_err(),
            "short secret"
        );
        assert!(
            Key::secret(Alg::HS512, None, &[b'x'; 63]).is_err(),
            "short secret"
        );
        // The key a reload removes is no longer known.
        jwt.reload(JwtConfig {
            enabled: true,
            keys: KeyIndex::new(vec![hs(Some("b"), b)]),
            ..JwtConfig::default()
        });
        assert!(!jwt.knows(&on_a.key) && jwt.knows(&on_b.key));
    }
}
