//! Keeping secrets out of what settings print: the effective settings as
//! TOML for `check-config`, a Redis URL's password, and a JWT key's `Debug`.

use super::{JwtKeySettings, Settings};

impl Settings {
    /// The effective settings as TOML, with every secret replaced.
    pub fn redacted(&self) -> String {
        let mut copy = self.clone();
        copy.auth.tokens = copy
            .auth
            .tokens
            .iter()
            .map(|t| {
                if t.starts_with("sha256:") {
                    t.clone()
                } else {
                    "<redacted>".into()
                }
            })
            .collect();
        for key in &mut copy.auth.jwt.keys {
            if !key.secret.is_empty() {
                key.secret = "<redacted>".into();
            }
        }
        for key in &mut copy.api.keys {
            if !key.key.is_empty() && !key.key.starts_with("sha256:") {
                key.key = "<redacted>".into();
            }
        }
        copy.broker.redis_url = redact_url(&copy.broker.redis_url);
        copy.broker.redis_urls = copy
            .broker
            .redis_urls
            .iter()
            .map(|u| redact_url(u))
            .collect();
        match toml::to_string_pretty(&copy) {
            Ok(text) => text,
            Err(e) => format!("# could not print settings: {e}\n"),
        }
    }
}

impl std::fmt::Debug for JwtKeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeySettings")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field(
                "secret",
                &if self.secret.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("secret_file", &self.secret_file)
            .field("public_key_file", &self.public_key_file)
            .finish()
    }
}

/// `redis://user:secret@host` → `redis://user:<redacted>@host`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:<redacted>@{host}")
        }
        None => url.to_string(),
    }
}
