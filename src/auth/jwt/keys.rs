//! Verification keys: each verifies exactly one algorithm and was built from
//! a key of that algorithm's type (an HMAC secret, an RSA, P-256/P-384 or
//! Ed25519 public key). A token's `alg` only picks among the keys that
//! exist, so an HS256 token "signed" with an RSA public key finds no HMAC key
//! holding that text.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};

/// The algorithms ws-chat verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    ES256,
    ES384,
    EdDSA,
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Alg {
    pub const ALL: [Alg; 10] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// The JOSE name (`"HS256"`), exactly as tokens and settings write it.
    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => Family::Hmac,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 => Family::Rsa,
            Alg::ES256 | Alg::ES384 => Family::Ec,
            Alg::EdDSA => Family::Ed,
        }
    }

    pub(super) fn jwt(self) -> Algorithm {
        match self {
            Alg::HS256 => Algorithm::HS256,
            Alg::HS384 => Algorithm::HS384,
            Alg::HS512 => Algorithm::HS512,
            Alg::RS256 => Algorithm::RS256,
            Alg::RS384 => Algorithm::RS384,
            Alg::RS512 => Algorithm::RS512,
            Alg::PS256 => Algorithm::PS256,
            Alg::ES256 => Algorithm::ES256,
            Alg::ES384 => Algorithm::ES384,
            Alg::EdDSA => Algorithm::EdDSA,
        }
    }

    /// RFC 7518 §3.2: an HMAC key at least as long as the hash.
    fn min_secret(self) -> usize {
        match self {
            Alg::HS384 => 48,
            Alg::HS512 => 64,
            _ => 32,
        }
    }
}

/// Identifies a key for as long as it is configured: the SHA-256 of its
/// algorithm, `kid` and material. A connection keeps the id of the key that
/// verified its token; when no key in force has that id any more, the
/// connection is closed (1008).
pub type KeyId = [u8; 32];

/// Why a key could not be used. Never contains the key or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{alg} needs a secret of at least {min} bytes")]
    ShortSecret { alg: &'static str, min: usize },
    #[error("not a PEM public key for {0}")]
    NotPublicKey(&'static str),
    #[error("the key does not fit {0} (wrong type or curve)")]
    WrongType(&'static str),
}

/// One key for one algorithm.
pub struct Key {
    pub kid: Option<String>,
    pub alg: Alg,
    pub id: KeyId,
    pub(super) decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// An HMAC key from its secret.
    pub fn secret(alg: Alg, kid: Option<String>, secret: &[u8]) -> Result<Key, KeyError> {
        let short = KeyError::ShortSecret {
            alg: alg.as_str(),
            min: alg.min_secret(),
        };
        if alg.family() != Family::Hmac || secret.len() < alg.min_secret() {
            return Err(short);
        }
        let decoding = DecodingKey::from_secret(secret).map_err(|_| short)?;
        Ok(Key::new(alg, kid, secret, decoding))
    }

    /// A public key from PEM (`PUBLIC KEY`, or `RSA PUBLIC KEY` for RSA).
    pub fn pem(alg: Alg, kid: Option<String>, pem: &[u8]) -> Result<Key, KeyError> {
        let name = alg.as_str();
        let decoding = match alg.family() {
            Family::Hmac => return Err(KeyError::WrongType(name)),
            Family::Rsa => DecodingKey::from_rsa_pem(pem),
            Family::Ec => DecodingKey::from_ec_pem(pem),
            Family::Ed => DecodingKey::from_ed_pem(pem),
        }
        .map_err(|_| KeyError::NotPublicKey(name))?;
        Key::public(alg, kid, pem, decoding)
    }

    /// A public key already decoded (PEM or JWK), checked against `alg`.
    pub fn public(
        alg: Alg,
        kid: Option<String>,
        material: &[u8],
        decoding: DecodingKey,
    ) -> Result<Key, KeyError> {
        let name = alg.as_str();
        let curve_fits = match (alg, decoding.try_get_as_bytes()) {
            // Uncompressed points: 0x04 || x || y.
            (Alg::ES256, Ok(b)) => b.len() == 65,
            (Alg::ES384, Ok(b)) => b.len() == 97,
            (Alg::EdDSA, Ok(b)) => b.len() == 32,
            _ => true,
        };
        if !curve_fits {
            return Err(KeyError::WrongType(name));
        }
        // Verifying a dummy signature parses the key as the verifier will:
        // a key that cannot verify anything is refused now, not at the first
        // token (Err: unusable; Ok(false): usable, the signature is wrong).
        jsonwebtoken::crypto::verify("AAAA", b"probe", &decoding, alg.jwt())
            .map_err(|_| KeyError::WrongType(name))?;
        Ok(Key::new(alg, kid, material, decoding))
    }

    fn new(alg: Alg, kid: Option<String>, material: &[u8], decoding: DecodingKey) -> Key {
        let mut h = Sha256::new();
        h.update(alg.as_str());
        h.update([0]);
        h.update(kid.as_deref().unwrap_or(""));
        h.update([0]);
        h.update(material);
        Key {
            kid,
            alg,
            id: h.finalize().into(),
            decoding,
        }
    }
}

/// What looking a token's key up found.
pub enum Lookup<'a> {
    Found(&'a Arc<Key>),
    /// A key has that `kid`, but for another algorithm.
    WrongAlg,
    /// Keys exist for the algorithm, none with that `kid`.
    UnknownKid,
    /// No key for the algorithm.
    NoAlg,
}

/// A set of keys in force, by algorithm and by `kid`; swapped whole.
#[derive(Debug, Default)]
pub struct KeyIndex {
    by_alg: HashMap<Alg, Vec<Arc<Key>>>,
    by_kid: HashMap<String, Vec<Arc<Key>>>,
    ids: HashSet<KeyId>,
}

impl KeyIndex {
    pub fn new(keys: Vec<Key>) -> KeyIndex {
        let mut index = KeyIndex::default();
        for key in keys {
            let key = Arc::new(key);
            index.ids.insert(key.id);
            if let Some(kid) = &key.kid {
                index
                    .by_kid
                    .entry(kid.clone())
                    .or_default()
                    .push(key.clone());
            }
            index.by_alg.entry(key.alg).or_default().push(key);
        }
        index
    }

    /// The key for a token's `alg` and `kid`. A token without a `kid` gets
    /// the key of its algorithm that has none, or the only key of its
    /// algorithm.
    pub fn lookup(&self, alg: Alg, kid: Option<&str>) -> Lookup<'_> {
        let of_alg = self.by_alg.get(&alg).map(Vec::as_slice).unwrap_or(&[]);
        let found = match kid {
            Some(kid) => match self.by_kid.get(kid) {
                Some(keys) => {
                    return match keys.iter().find(|k| k.alg == alg) {
                        Some(k) => Lookup::Found(k),
                        None => Lookup::WrongAlg,
                    }
                }
                None => None,
            },
            None => of_alg
                .iter()
                .find(|k| k.kid.is_none())
                .or(if of_alg.len() == 1 {
                    of_alg.first()
                } else {
                    None
                }),
        };
        match found {
            Some(k) => Lookup::Found(k),
            None if of_alg.is_empty() => Lookup::NoAlg,
            None => Lookup::UnknownKid,
        }
    }

    /// Whether a key with this id is in the set.
    pub fn contains(&self, id: &KeyId) -> bool {
        self.ids.contains(id)
    }

    /// The ids of every key (to tell whether a re-read changed anything).
    pub fn ids(&self) -> &HashSet<KeyId> {
        &self.ids
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}
