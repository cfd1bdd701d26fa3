//! The server API's settings (`[api]`): its keys as written, the
//! idempotency window and the body cap. The keys themselves are read and
//! checked by `crate::api::keys` (config does not parse secrets).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::serde_with::{byte_size, duration};

/// The smallest and largest `api.max_body_bytes`.
pub const BODY_BYTES: std::ops::RangeInclusive<u64> = 1024..=1024 * 1024;
/// The shortest and longest `api.idempotency_window`.
pub const IDEMPOTENCY_WINDOW: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(24 * 3600);

/// `[api]`: the server API on the admin listener, off while `keys` is empty.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// How long a publish's `idempotencyKey` is remembered.
    #[serde(with = "duration")]
    pub idempotency_window: Duration,
    /// Largest request body (413 over it).
    #[serde(with = "byte_size")]
    pub max_body_bytes: u64,
    /// The keys backends present; none: the API is off.
    #[serde(default)]
    pub keys: Vec<ApiKeySettings>,
}

impl ApiSettings {
    /// Problems of the plain settings (the keys are checked where they are read).
    pub(super) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !BODY_BYTES.contains(&self.max_body_bytes) {
            p.push(format!(
                "api.max_body_bytes: must be between {} and {}",
                BODY_BYTES.start(),
                BODY_BYTES.end()
            ));
        }
        if !IDEMPOTENCY_WINDOW.contains(&self.idempotency_window) {
            p.push("api.idempotency_window: must be between 1s and 24h".into());
        }
        p
    }
}

/// One `[[api.keys]]` entry: `name`, `scopes`, and exactly one of `key`
/// (plain or `sha256:<hex>`) or `key_file`. Its `Debug` hides the key.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_file: String,
}

impl std::fmt::Debug for ApiKeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match self.key.is_empty() {
            true => "",
            false => "<redacted>",
        };
        f.debug_struct("ApiKeySettings")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("key", &key)
            .field("key_file", &self.key_file)
            .finish()
    }
}
