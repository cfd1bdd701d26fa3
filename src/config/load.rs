//! Loading the settings: the layers (embedded defaults, profile, file,
//! environment), the reference server's variables, and every check of the
//! values this module owns, each problem naming its key.

use std::collections::HashMap;

use config::{Config, Environment, File, FileFormat};

use super::{parse_cidr, BrokerKind, Settings, SettingsError, Sources, DEFAULTS};

/// The reference server's variables and the settings they stand for. An
/// explicit `CHAT__...` variable wins over its reference name.
const REFERENCE_VARS: [(&str, &str); 3] = [
    ("PORT", "CHAT__SERVER__PORT"),
    ("CHAT_TOKEN", "CHAT__AUTH__TOKENS"),
    ("ALLOWED_ORIGINS", "CHAT__AUTH__ALLOWED_ORIGINS"),
];

/// The smallest request-head cap: hyper's smallest read buffer (it panics below).
const MIN_HEADER_BYTES: usize = 8192;
/// The largest: hyper's default read buffer is about 400 KB.
const MAX_HEADER_BYTES: usize = 1 << 20;

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

        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(profile) = sources.env.get("CHAT_ENV").filter(|p| !p.is_empty()) {
            let path = sources.config_dir.join(format!("{profile}.toml"));
            if path.exists() {
                builder = builder.add_source(File::from(path).format(FileFormat::Toml));
            }
        }
        if let Some(path) = &sources.config_file {
            builder = builder.add_source(File::from(path.clone()).format(FileFormat::Toml));
        }
        builder = builder.add_source(
            Environment::with_prefix("CHAT")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env.into_iter().collect())),
        );
        let settings = builder
            .build()
            .and_then(|c| c.try_deserialize::<Settings>())
            .map_err(|e| {
                problems.push(e.to_string());
                SettingsError(problems.clone())
            })?;
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
            ("auth.expiry_warning", self.auth.expiry_warning),
            ("auth.jwt.jwks_refresh", self.auth.jwt.jwks_refresh),
            ("auth.jwt.jwks_min_refresh", self.auth.jwt.jwks_min_refresh),
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
    fn jwt_settings_load_from_a_file_and_their_secrets_are_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[auth]\ntokens = []\n[auth.jwt]\naudience = [\"chat\"]\n\
             [[auth.jwt.keys]]\nalg = \"HS256\"\nkid = \"a\"\nsecret = \"jwt-hunter2-jwt-hunter2-jwt-hunter2\"\n\
             [[auth.jwt.keys]]\nalg = \"RS256\"\npublic_key_file = \"/k.pem\"\n",
        )
        .expect("write");
        let sources = Sources {
            config_file: Some(file),
            ..Sources::default()
        };
        let s = load(&sources).expect("JWT alone is enough to connect with");
        assert!(s.auth.jwt.enabled());
        assert_eq!(s.auth.jwt.keys.len(), 2);
        assert_eq!(s.auth.jwt.keys[0].kid, "a");
        assert_eq!(s.auth.jwt.leeway, Duration::from_secs(5));
        assert_eq!(s.auth.expiry_warning, Duration::from_secs(60));
        let text = s.redacted();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{s:?}").contains("hunter2"), "Debug hides it too");
        assert!(text.contains("public_key_file = \"/k.pem\""), "{text}");
        let e = load(&Sources::from_env([
            ("CHAT__AUTH__EXPIRY_WARNING", "0s"),
            ("CHAT__AUTH__JWT__LEEWAY", "10m"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("auth.expiry_warning") && e.contains("auth.jwt.leeway"),
            "{e}"
        );
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

    #[test]
    fn edge_settings_default_and_are_checked_naming_their_keys() {
        let s = load(&Sources::default()).expect("defaults load");
        assert_eq!(s.limits.ipv6_prefix, 64);
        assert_eq!(s.server.max_header_bytes, 16384);
        assert_eq!(s.server.max_http_connections, 4096);
        assert_eq!(s.server.ip_max_http_connections, 32);
        for (var, value, key) in [
            ("CHAT__LIMITS__IPV6_PREFIX", "0", "limits.ipv6_prefix"),
            ("CHAT__LIMITS__IPV6_PREFIX", "129", "limits.ipv6_prefix"),
            ("CHAT__LIMITS__IPV6_PREFIX", "300", "limits.ipv6_prefix"),
            (
                "CHAT__SERVER__MAX_HEADER_BYTES",
                "8191",
                "server.max_header_bytes",
            ),
            (
                "CHAT__SERVER__MAX_HEADER_BYTES",
                "2000000",
                "server.max_header_bytes",
            ),
            (
                "CHAT__SERVER__MAX_HTTP_CONNECTIONS",
                "0",
                "server.max_http_connections",
            ),
            (
                "CHAT__SERVER__IP_MAX_HTTP_CONNECTIONS",
                "0",
                "server.ip_max_http_connections",
            ),
        ] {
            let e = load(&Sources::from_env([(var, value)])).unwrap_err();
            assert!(e.to_string().contains(key), "{var}={value}: {e}");
        }
        for (var, value) in [
            ("CHAT__LIMITS__IPV6_PREFIX", "1"),
            ("CHAT__LIMITS__IPV6_PREFIX", "128"),
            ("CHAT__SERVER__MAX_HEADER_BYTES", "8192"),
        ] {
            load(&Sources::from_env([(var, value)])).expect(value);
        }
    }

    #[test]
    fn ipv4_mapped_trusted_proxies_are_ipv4_networks() {
        let s = load(&Sources::from_env([(
            "CHAT__SERVER__TRUSTED_PROXIES",
            "::ffff:10.0.0.0/104, ::ffff:192.0.2.1, 2001:db8::/32, ::ffff:0:0/95",
        )]))
        .expect("loads");
        let nets: Vec<String> = s.trusted_proxies().iter().map(|n| n.to_string()).collect();
        assert_eq!(
            nets,
            [
                "10.0.0.0/8",
                "192.0.2.1/32",
                "2001:db8::/32",
                "::ffff:0.0.0.0/95"
            ]
        );
    }
}
