//! The Origin policy: which pages may open a WebSocket (exact origins and
//! `scheme://*.domain` wildcards, matched case-sensitively).

use super::AuthError;
use crate::config::Settings;

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
    pub fn parse(text: &str) -> Result<OriginRule, AuthError> {
        let bad = |problem| AuthError::Origin {
            origin: text.to_string(),
            problem,
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("not an origin like https://chat.example.com"))?;
        if !matches!(scheme, "http" | "https") {
            return Err(bad("scheme must be http or https"));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad("an origin has no path, query or user"));
        }
        if rest.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("browsers send origins in lower case"));
        }
        match rest.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                Ok(OriginRule::Wildcard {
                    prefix: format!("{scheme}://"),
                    suffix: format!(".{domain}"),
                })
            }
            Some(_) => Err(bad("a wildcard is `scheme://*.domain`")),
            None if rest.contains('*') => Err(bad("`*` only as `*.domain`")),
            None => Ok(OriginRule::Exact(text.to_string())),
        }
    }

    pub(super) fn matches(&self, origin: &str) -> bool {
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
    pub(super) rules: Vec<OriginRule>,
    pub(super) allow_missing: bool,
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
