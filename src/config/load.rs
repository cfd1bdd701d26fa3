//! Loading the settings: the layers (embedded defaults, profile, file,
//! environment), the reference server's variables, and every check of the
//! values this module owns, each problem naming its key.

use std::collections::HashMap;

use config::builder::DefaultState;
use config::{Config, ConfigBuilder, Environment, File, FileFormat};

use super::{parse_cidr, BrokerKind, Settings, SettingsError, Sources, DEFAULTS};

/// The reference server's variables and the settings they stand for. An
/// explicit `CHAT__...` variable wins over its reference name.
const REFERENCE_VARS: [(&str, &str); 3] = [
    ("PORT", "CHAT__SERVER__PORT"),
    ("CHAT_TOKEN", "CHAT__AUTH__TOKENS"),
    ("ALLOWED_ORIGINS", "CHAT__AUTH__ALLOWED_ORIGINS"),
];

/// `session.direct_write_buffer`: a page at least (the kernel's own floor is
/// about 4.6 KB), 16 MiB at most.
const DIRECT_WRITE_BUFFER: std::ops::RangeInclusive<u64> = 4096..=16 << 20;

/// The smallest request-head cap: hyper's smallest read buffer (it panics below).
const MIN_HEADER_BYTES: usize = 8192;
/// The largest: hyper's default read buffer is about 400 KB.
const MAX_HEADER_BYTES: usize = 1 << 20;
/// What a stored message may hold beyond the client's text (id, room, name,
/// time, seq, JSON) and costs to keep, for the `rooms.history_bytes` floor.
const MESSAGE_SLACK: u64 = 512;

impl Settings {
    /// Loads every layer, then validates the result: the checks this module
    /// owns, plus `parts`, the checks of the modules that parse their own
    /// sections (tokens, origins, certificates). Config imports none of them;
    /// the caller hands them in (see `ws_chat::load_settings`), so every
    /// problem is still reported at once.
    pub fn load(
        sources: &Sources,
        parts: impl FnOnce(&Settings) -> Vec<String>,
    ) -> Result<Settings, SettingsError> {
        let mut problems = Vec::new();
        let mut env: HashMap<String, String> = HashMap::new();
        for (key, value) in &sources.env {
            if key.starts_with("CHAT__") {
                env.insert(key.clone(), value.clone());
            } else if key.starts_with("CHAT_") && key != "CHAT_TOKEN" && key != "CHAT_ENV" {
                // `CHAT_SERVER__PORT` (one underscore) would otherwise be ignored silently.
                problems.push(format!(
                    "{key}: unknown variable (settings use two underscores: CHAT__SECTION__KEY)"
                ));
            }
        }
        for (reference, name) in REFERENCE_VARS {
            if let Some(value) = sources.env.get(reference) {
                env.entry(name.to_string()).or_insert_with(|| value.clone());
            }
        }

        let layers = |builder: ConfigBuilder<DefaultState>| {
            let mut builder = builder;
            if let Some(profile) = sources.env.get("CHAT_ENV").filter(|p| !p.is_empty()) {
                let path = sources.config_dir.join(format!("{profile}.toml"));
                if path.exists() {
                    builder = builder.add_source(File::from(path).format(FileFormat::Toml));
                }
            }
            if let Some(path) = &sources.config_file {
                builder = builder.add_source(File::from(path.clone()).format(FileFormat::Toml));
            }
            builder.add_source(
                Environment::with_prefix("CHAT")
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env.clone().into_iter().collect())),
            )
        };
        let defaults = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        let mut settings = layers(defaults)
            .build()
            .and_then(|c| c.try_deserialize::<Settings>())
            .map_err(|e| {
                problems.push(e.to_string());
                SettingsError(problems.clone())
            })?;
        // The built-in dev token is the one no layer above the embedded
        // defaults chose: those layers alone (they built above) say whether
        // any of them set auth.tokens.
        settings.auth.builtin_dev_token = layers(Config::builder())
            .build()
            .is_ok_and(|c| c.get::<config::Value>("auth.tokens").is_err());
        problems.extend(settings.problems());
        problems.extend(parts(&settings));
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError(problems))
        }
    }

    /// Every semantic problem, each naming its key.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.auth.tokens.iter().all(|t| t.trim().is_empty())
            && self.auth.tokens_file.is_empty()
            && !self.auth.jwt.enabled()
        {
            p.push("auth.tokens: no tokens configured (set auth.tokens, CHAT_TOKEN, auth.tokens_file or auth.jwt)".into());
        }
        for cidr in &self.server.trusted_proxies {
            if parse_cidr(cidr).is_none() {
                p.push(format!(
                    "server.trusted_proxies: `{cidr}` is not an IP address or CIDR"
                ));
            }
        }
        if !(1..=128).contains(&self.limits.ipv6_prefix) {
            p.push(
                "limits.ipv6_prefix: must be between 1 and 128 (bits of an IPv6 address)".into(),
            );
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.server.max_header_bytes) {
            p.push(format!(
                "server.max_header_bytes: must be between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}"
            ));
        }
        if self.server.port != 0 && self.server.port == self.server.admin_port {
            p.push("server.admin_port: must differ from server.port".into());
        }
        let positive = [
            (
                "server.max_http_connections",
                self.server.max_http_connections as u64,
            ),
            (
                "server.ip_max_http_connections",
                self.server.ip_max_http_connections as u64,
            ),
            ("limits.max_connections", self.limits.max_connections as u64),
            (
                "limits.ip_max_connections",
                self.limits.ip_max_connections as u64,
            ),
            (
                "limits.ip_connect_burst",
                self.limits.ip_connect_burst as u64,
            ),
            ("limits.message_burst", self.limits.message_burst as u64),
            (
                "limits.ip_message_burst",
                self.limits.ip_message_burst as u64,
            ),
            (
                "limits.ip_auth_failure_burst",
                self.limits.ip_auth_failure_burst as u64,
            ),
            (
                "limits.user_max_connections",
                self.limits.user_max_connections as u64,
            ),
            (
                "limits.user_message_burst",
                self.limits.user_message_burst as u64,
            ),
            ("limits.max_text_chars", self.limits.max_text_chars as u64),
            (
                "limits.max_rooms_per_connection",
                self.limits.max_rooms_per_connection as u64,
            ),
            ("session.outbound_queue", self.session.outbound_queue as u64),
            (
                "session.slow_consumer_drops",
                self.session.slow_consumer_drops as u64,
            ),
            ("rooms.history", self.rooms.history as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                p.push(format!("{key}: must be at least 1"));
            }
        }
        if !DIRECT_WRITE_BUFFER.contains(&self.session.direct_write_buffer) {
            p.push(format!(
                "session.direct_write_buffer: must be between {} and {} bytes",
                DIRECT_WRITE_BUFFER.start(),
                DIRECT_WRITE_BUFFER.end()
            ));
        }
        if self.limits.max_message_bytes < 64 {
            p.push("limits.max_message_bytes: must be at least 64".into());
        }
        // One room's full history must fit: a message's JSON is at most the
        // client's frame plus the fields the server adds, and its bookkeeping.
        p.extend(self.rooms.namespace_problems());
        p.extend(self.api.problems());
        let one_room = (self.rooms.largest_history() as u64)
            .saturating_mul(self.limits.max_message_bytes as u64 + MESSAGE_SLACK);
        if self.rooms.history_bytes < one_room {
            p.push(format!(
                "rooms.history_bytes: must hold at least one room's full history: \
                 rooms.history × (limits.max_message_bytes + {MESSAGE_SLACK}) = {one_room} bytes"
            ));
        }
        let durations = [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
            ),
            ("limits.ip_connect_refill", self.limits.ip_connect_refill),
            ("limits.message_refill", self.limits.message_refill),
            ("limits.ip_message_refill", self.limits.ip_message_refill),
            (
                "limits.ip_auth_failure_refill",
                self.limits.ip_auth_failure_refill,
            ),
            (
                "limits.user_message_refill",
                self.limits.user_message_refill,
            ),
            (
                "session.heartbeat_interval",
                self.session.heartbeat_interval,
            ),
            ("session.close_timeout", self.session.close_timeout),
            ("auth.expiry_warning", self.auth.expiry_warning),
            ("auth.jwt.jwks_refresh", self.auth.jwt.jwks_refresh),
            ("auth.jwt.jwks_min_refresh", self.auth.jwt.jwks_min_refresh),
        ];
        for (key, value) in durations {
            if value.is_zero() {
                p.push(format!("{key}: must be longer than zero"));
            }
        }
        if self.broker.kind == BrokerKind::Redis {
            p.extend(self.broker.redis_address_problems());
        }
        let tls = self.broker.redis_tls();
        if self.broker.kind == BrokerKind::Redis && !self.broker.redis_ca_file.is_empty() && !tls {
            p.push("broker.redis_ca_file: only used with a rediss:// URL (TLS)".into());
        }
        let (cert, key) = (
            !self.broker.redis_client_cert_file.is_empty(),
            !self.broker.redis_client_key_file.is_empty(),
        );
        if self.broker.kind == BrokerKind::Redis && (cert || key) {
            if cert != key {
                p.push(
                    "broker.redis_client_cert_file: needs broker.redis_client_key_file \
                     too (and the other way round)"
                        .into(),
                );
            } else if !tls {
                p.push(
                    "broker.redis_client_cert_file: only used with a rediss:// URL (TLS)".into(),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            p.push("telemetry.sample_ratio: must be between 0.0 and 1.0".into());
        }
        if !(0.0..=4.0).contains(&self.rooms.fanout_pause) {
            p.push("rooms.fanout_pause: must be between 0 (off) and 4".into());
        }
        if self.rooms.fanout_pause_max > std::time::Duration::from_secs(1) {
            p.push(
                "rooms.fanout_pause_max: at most 1s (every message of a big room may wait it)"
                    .into(),
            );
        }
        if self.rooms.presence_max_interval < self.rooms.presence_interval {
            p.push("rooms.presence_max_interval: must be at least rooms.presence_interval".into());
        }
        if self.auth.jwt.leeway > std::time::Duration::from_secs(300) {
            p.push("auth.jwt.leeway: at most 5m (it lets expired tokens in)".into());
        }
        if self.auth.jwt.jwks_min_refresh > self.auth.jwt.jwks_refresh {
            p.push("auth.jwt.jwks_min_refresh: must not exceed auth.jwt.jwks_refresh".into());
        }
        if self.broker.presence_ttl < std::time::Duration::from_millis(300) {
            p.push("broker.presence_ttl: must be at least 300ms".into());
        }
        p
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
