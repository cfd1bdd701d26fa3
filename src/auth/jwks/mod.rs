//! JWKS (RFC 7517): a document of public keys, read from a file with the
//! settings or fetched from an `http(s)://` URL ([`fetch`]) and kept fresh by
//! the server (`server/jwks.rs`). Keys are cached by `kid` in a
//! [`KeyIndex`](crate::auth::jwt::KeyIndex) swapped whole on every good read.
//!
//! Only signature keys are taken: RSA (RS256/384/512, PS256), EC P-256 and
//! P-384 (ES256/384) and Ed25519 (EdDSA). Symmetric (`oct`) keys, encryption
//! keys and keys whose `alg` does not fit their type are skipped and counted:
//! an HMAC secret has no business in a document served to anyone.

pub mod fetch;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::jwt::keys::Family;
use crate::auth::jwt::{Alg, Key, KeyIndex};

/// Why a JWKS document was refused (the keys in force stay).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("not a JWKS document (a JSON object with a `keys` array)")]
    NotJwks,
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
}

/// The usable keys of a document, and how many entries were skipped.
pub struct Parsed {
    pub keys: Vec<Key>,
    pub skipped: usize,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Value>,
}

/// Parses a JWKS document.
pub fn parse(doc: &[u8]) -> Result<Parsed, JwksError> {
    let doc: Document = serde_json::from_slice(doc).map_err(|_| JwksError::NotJwks)?;
    let mut parsed = Parsed {
        keys: Vec::new(),
        skipped: 0,
    };
    for entry in &doc.keys {
        match keys_of(entry) {
            Some(keys) if !keys.is_empty() => parsed.keys.extend(keys),
            _ => parsed.skipped += 1,
        }
    }
    Ok(parsed)
}

/// Fetches and parses the document at `url`, into a key index.
pub async fn fetch_keys(url: &str) -> Result<(KeyIndex, usize), JwksError> {
    let body = fetch::get(url).await?;
    let parsed = parse(&body)?;
    Ok((KeyIndex::new(parsed.keys), parsed.skipped))
}

/// The keys one JWK gives: one per algorithm it may verify.
fn keys_of(entry: &Value) -> Option<Vec<Key>> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let kid = field("kid").map(str::to_string);
    let algs: Vec<Alg> = match (field("kty")?, field("crv"), field("alg")) {
        (_, _, Some(alg)) => vec![Alg::parse(alg)?],
        ("RSA", _, None) => vec![Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256],
        ("EC", Some("P-256"), None) => vec![Alg::ES256],
        ("EC", Some("P-384"), None) => vec![Alg::ES384],
        ("OKP", Some("Ed25519"), None) => vec![Alg::EdDSA],
        _ => return None,
    };
    let fits = |alg: Alg| match (alg.family(), field("kty"), field("crv")) {
        (Family::Rsa, Some("RSA"), _) => true,
        (Family::Ec, Some("EC"), Some(crv)) => {
            (alg == Alg::ES256 && crv == "P-256") || (alg == Alg::ES384 && crv == "P-384")
        }
        (Family::Ed, Some("OKP"), Some("Ed25519")) => true,
        _ => false,
    };
    if !algs.iter().all(|a| fits(*a)) {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    // The public numbers identify the key (with its kid and algorithm).
    let material: String = ["kty", "crv", "n", "e", "x", "y"]
        .iter()
        .map(|f| field(f).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(".");
    algs.into_iter()
        .map(|alg| Key::public(alg, kid.clone(), material.as_bytes(), decoding.clone()).ok())
        .collect()
}
