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
        if self.auth.tokens.iter().all(|t| t.trim().is_empty()) && self.auth.tokens_file.is_empty()
        {
            p.push("auth.tokens: no tokens configured (set auth.tokens, CHAT_TOKEN or auth.tokens_file)".into());
        }
        for cidr in &self.server.trusted_proxies {
            if parse_cidr(cidr).is_none() {
                p.push(format!(
                    "server.trusted_proxies: `{cidr}` is not an IP address or CIDR"
                ));
            }
        }
        if self.server.port != 0 && self.server.port == self.server.admin_port {
            p.push("server.admin_port: must differ from server.port".into());
        }
        let positive = [
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
            ("limits.max_text_chars", self.limits.max_text_chars as u64),
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
        if self.limits.max_message_bytes < 64 {
            p.push("limits.max_message_bytes: must be at least 64".into());
        }
        // One room's full history must fit: a message's JSON is at most the
        // client's frame plus the fields the server adds, and its bookkeeping.
        let one_room = (self.rooms.history as u64)
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
                "session.heartbeat_interval",
                self.session.heartbeat_interval,
            ),
            ("session.close_timeout", self.session.close_timeout),
        ];
        for (key, value) in durations {
            if value.is_zero() {
                p.push(format!("{key}: must be longer than zero"));
            }
        }
        if self.broker.kind == BrokerKind::Redis
            && !(self.broker.redis_url.starts_with("redis://")
                || self.broker.redis_url.starts_with("rediss://"))
        {
            p.push("broker.redis_url: must start with redis:// or rediss://".into());
        }
        if self.broker.kind == BrokerKind::Redis
            && !self.broker.redis_ca_file.is_empty()
            && !self.broker.redis_url.starts_with("rediss://")
        {
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
            } else if !self.broker.redis_url.starts_with("rediss://") {
                p.push(
                    "broker.redis_client_cert_file: only used with a rediss:// URL (TLS)".into(),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            p.push("telemetry.sample_ratio: must be between 0.0 and 1.0".into());
        }
        if self.rooms.presence_max_interval < self.rooms.presence_interval {
            p.push("rooms.presence_max_interval: must be at least rooms.presence_interval".into());
        }
        if self.broker.presence_ttl < std::time::Duration::from_millis(300) {
            p.push("broker.presence_ttl: must be at least 300ms".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::TracesMode;

    fn load(sources: &Sources) -> Result<Settings, SettingsError> {
        Settings::load(sources, |_| Vec::new())
    }

    #[test]
    fn defaults_match_the_reference_server() {
        let s = load(&Sources::default()).expect("defaults load");
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.auth.tokens, vec!["dev-token".to_string()]);
        assert_eq!(
            s.allowed_origins(),
            vec!["http://localhost:8080", "http://127.0.0.1:8080"]
        );
        assert_eq!(s.rooms.history, 50);
        assert_eq!(s.limits.message_burst, 20);
        assert_eq!(s.limits.message_refill, Duration::from_millis(500));
        assert_eq!(s.limits.max_text_chars, 500);
        assert_eq!(s.limits.max_message_bytes, 2048);
        assert_eq!(s.session.heartbeat_interval, Duration::from_secs(30));
    }

    #[test]
    fn reference_variables_and_double_underscore_variables_apply() {
        let s = load(&Sources::from_env([
            ("PORT", "9000"),
            ("CHAT_TOKEN", "s3cret"),
            (
                "CHAT__AUTH__ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            ),
            ("CHAT__SESSION__HEARTBEAT_INTERVAL", "5s"),
        ]))
        .expect("loads");
        assert_eq!(s.server.port, 9000);
        assert_eq!(s.auth.tokens, vec!["s3cret".to_string()]);
        assert_eq!(
            s.allowed_origins(),
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(s.session.heartbeat_interval, Duration::from_secs(5));
    }

    #[test]
    fn the_dev_token_is_builtin_only_when_no_layer_sets_tokens() {
        let s = load(&Sources::default()).expect("defaults load");
        assert!(s.auth.builtin_dev_token);
        // Another auth key does not count as configuring the tokens.
        let s = load(&Sources::from_env([(
            "CHAT__AUTH__ALLOW_MISSING_ORIGIN",
            "true",
        )]))
        .expect("loads");
        assert!(s.auth.builtin_dev_token);
        for (key, value) in [("CHAT_TOKEN", "dev-token"), ("CHAT__AUTH__TOKENS", "a,b")] {
            let s = load(&Sources::from_env([(key, value)])).expect("loads");
            assert!(!s.auth.builtin_dev_token, "{key}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[auth]\ntokens = [\"dev-token\"]\n").expect("write");
        let sources = Sources {
            config_file: Some(file),
            ..Sources::default()
        };
        assert!(!load(&sources).expect("loads").auth.builtin_dev_token);
    }

    #[test]
    fn history_bytes_takes_bytes_or_units_and_must_hold_one_room() {
        let s = load(&Sources::default()).expect("defaults load");
        assert_eq!(s.rooms.history_bytes, 64 << 20);
        for (text, bytes) in [
            ("1048576", 1 << 20),
            ("2MiB", 2 << 20),
            ("2 mib", 2 << 20),
            ("3MB", 3_000_000),
            ("1GiB", 1 << 30),
            ("512KiB", 512 << 10),
        ] {
            let s = load(&Sources::from_env([("CHAT__ROOMS__HISTORY_BYTES", text)]))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.rooms.history_bytes, bytes, "{text}");
        }
        for bad in ["64M", "lots", "-5", "1.5MiB", "99999999999999999999GiB"] {
            let e = load(&Sources::from_env([("CHAT__ROOMS__HISTORY_BYTES", bad)])).unwrap_err();
            assert!(e.to_string().contains("history_bytes"), "{bad}: {e}");
        }
        let e = load(&Sources::from_env([(
            "CHAT__ROOMS__HISTORY_BYTES",
            "64KiB",
        )]))
        .unwrap_err();
        assert!(
            e.to_string().contains("rooms.history_bytes: must hold"),
            "{e}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[rooms]\nhistory_bytes = 2097152\n").expect("write");
        let sources = Sources {
            config_file: Some(file),
            ..Sources::default()
        };
        assert_eq!(load(&sources).expect("loads").rooms.history_bytes, 2 << 20);
    }

    #[test]
    fn port_change_moves_the_default_origins() {
        let s = load(&Sources::from_env([("PORT", "8090")])).expect("loads");
        assert_eq!(s.allowed_origins()[0], "http://localhost:8090");
    }

    #[test]
    fn misspelt_and_unknown_keys_are_errors_naming_the_key() {
        let e = load(&Sources::from_env([("CHAT_SERVER__PORT", "1")])).unwrap_err();
        assert!(e.to_string().contains("CHAT_SERVER__PORT"), "{e}");
        let e = load(&Sources::from_env([("CHAT__SERVER__PROT", "1")])).unwrap_err();
        assert!(e.to_string().contains("prot"), "{e}");
    }

    #[test]
    fn redaction_hides_tokens_and_redis_passwords() {
        let mut s = load(&Sources::from_env([("CHAT_TOKEN", "hunter2")])).expect("loads");
        s.broker.redis_url = "redis://app:pa55@redis:6379".into();
        let text = s.redacted();
        assert!(
            !text.contains("hunter2") && !text.contains("pa55"),
            "{text}"
        );
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn trace_settings_load_from_the_environment_and_are_checked() {
        let s = load(&Sources::default()).expect("defaults load");
        assert_eq!(s.telemetry.traces, TracesMode::Auto);
        assert_eq!(s.telemetry.sample_ratio, 0.01);
        let s = load(&Sources::from_env([
            ("CHAT__TELEMETRY__TRACES", "otlp"),
            ("CHAT__TELEMETRY__SAMPLE_RATIO", "0.5"),
        ]))
        .expect("loads");
        assert_eq!(s.telemetry.traces, TracesMode::Otlp);
        assert_eq!(s.telemetry.sample_ratio, 0.5);
        let e = load(&Sources::from_env([(
            "CHAT__TELEMETRY__SAMPLE_RATIO",
            "1.5",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("telemetry.sample_ratio"), "{e}");
        let e = load(&Sources::from_env([("CHAT__TELEMETRY__TRACES", "jaeger")])).unwrap_err();
        assert!(e.to_string().contains("jaeger"), "{e}");
    }
}
