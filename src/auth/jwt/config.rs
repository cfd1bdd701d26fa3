//! The JWT part of the settings made real: every configured key read
//! (secrets, secret files, PEM files, the JWKS file) and the claim rules,
//! each problem naming its entry or file, never a secret.

use super::keys::{self, Alg, Key, KeyIndex};
use super::Rules;
use crate::auth::AuthError;
use crate::config::JwtSettings;

/// What the settings configure: their keys and the claim rules.
#[derive(Debug, Default)]
pub struct JwtConfig {
    pub enabled: bool,
    pub keys: KeyIndex,
    pub rules: Rules,
    /// The JWKS URL, when one is configured.
    pub jwks_url: Option<String>,
}

impl JwtConfig {
    /// Reads every key the settings name (secret files, PEM files, the JWKS
    /// file). Errors name the entry or file, never a secret.
    pub fn from_settings(s: &JwtSettings) -> Result<JwtConfig, Vec<AuthError>> {
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        let mut kids = std::collections::HashSet::new();
        for (index, entry) in s.keys.iter().enumerate() {
            match key_from_settings(entry) {
                Ok(key) => {
                    if let Some(kid) = &key.kid {
                        if !kids.insert(kid.clone()) {
                            problems.push(AuthError::JwtKey {
                                index,
                                problem: "a kid must be unique".into(),
                            });
                        }
                    }
                    keys.push(key);
                }
                Err(problem) => problems.push(AuthError::JwtKey { index, problem }),
            }
        }
        if !s.jwks_file.is_empty() {
            match read(&s.jwks_file).and_then(|doc| {
                crate::auth::jwks::parse(&doc).map_err(|e| AuthError::Unreadable {
                    path: s.jwks_file.clone(),
                    reason: e.to_string(),
                })
            }) {
                Ok(parsed) => keys.extend(parsed.keys),
                Err(e) => problems.push(e),
            }
        }
        let url = &s.jwks_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(AuthError::JwksUrl);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(JwtConfig {
            enabled: s.enabled(),
            keys: KeyIndex::new(keys),
            rules: Rules {
                audience: s.audience.clone(),
                issuer: s.issuer.clone(),
                leeway: s.leeway,
            },
            jwks_url: (!s.jwks_url.is_empty()).then(|| s.jwks_url.clone()),
        })
    }
}

fn read(path: &str) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|e| AuthError::Unreadable {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

fn key_from_settings(entry: &crate::config::JwtKeySettings) -> Result<Key, String> {
    let alg = Alg::parse(&entry.alg).ok_or_else(|| {
        format!(
            "alg `{}` is not one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384, EdDSA",
            entry.alg
        )
    })?;
    let kid = (!entry.kid.is_empty()).then(|| entry.kid.clone());
    let given = [&entry.secret, &entry.secret_file, &entry.public_key_file]
        .iter()
        .filter(|v| !v.is_empty())
        .count();
    if given != 1 {
        return Err("give exactly one of secret, secret_file, public_key_file".into());
    }
    let file = |path: &str| std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"));
    let key = if alg.family() == keys::Family::Hmac {
        if !entry.public_key_file.is_empty() {
            return Err(format!("{} takes secret or secret_file", alg.as_str()));
        }
        let secret = match entry.secret_file.is_empty() {
            true => entry.secret.as_bytes().to_vec(),
            // A file written by `echo` ends in a newline that is not part of the secret.
            false => {
                let mut bytes = file(&entry.secret_file)?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                bytes
            }
        };
        Key::secret(alg, kid, &secret)
    } else {
        if entry.public_key_file.is_empty() {
            return Err(format!("{} takes public_key_file (PEM)", alg.as_str()));
        }
        Key::pem(alg, kid, &file(&entry.public_key_file)?)
    };
    key.map_err(|e| e.to_string())
}
