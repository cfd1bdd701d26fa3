//! Settings: the layered sources, validation, and redaction for printing.
//!
//! Settings are plain data, parsed completely before anything binds. Every
//! source is injectable ([`Sources`]) so tests never touch the process
//! environment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The embedded defaults: the reference server's behaviour.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything the settings are loaded from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The environment (the process's, or a test's own map).
    pub env: HashMap<String, String>,
    /// `--config FILE`, if given.
    pub config_file: Option<PathBuf>,
    /// Where `$CHAT_ENV.toml` is looked up.
    pub config_dir: PathBuf,
}

impl Sources {
    /// The real process environment, `--config FILE`, and `./config`.
    pub fn from_process(config_file: Option<PathBuf>) -> Self {
        Sources {
            env: std::env::vars().collect(),
            config_file,
            config_dir: PathBuf::from("config"),
        }
    }

    /// Only the given variables (for tests and tools).
    pub fn from_env<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Sources {
            env: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            config_file: None,
            config_dir: PathBuf::from("config"),
        }
    }
}

/// Invalid settings: every problem found, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings:\n  - {}", .0.join("\n  - "))]
pub struct SettingsError(pub Vec<String>);

/// All of ws-chat's settings. See `config/default.toml` for each field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub tls: TlsSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub session: SessionSettings,
    pub rooms: RoomSettings,
    pub broker: BrokerSettings,
    pub shutdown: ShutdownSettings,
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub admin_host: String,
    pub admin_port: u16,
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    #[serde(with = "list")]
    pub trusted_proxies: Vec<String>,
}

/// In-process TLS: on when both files are set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
}

impl TlsSettings {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty() || !self.key_file.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(with = "list")]
    pub tokens: Vec<String>,
    pub tokens_file: String,
    #[serde(default, with = "opt_list")]
    pub allowed_origins: Option<Vec<String>>,
    pub allow_missing_origin: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_connections: u32,
    pub ip_max_connections: u32,
    pub ip_connect_burst: u32,
    #[serde(with = "duration")]
    pub ip_connect_refill: Duration,
    pub message_burst: u32,
    #[serde(with = "duration")]
    pub message_refill: Duration,
    pub ip_message_burst: u32,
    #[serde(with = "duration")]
    pub ip_message_refill: Duration,
    pub ip_auth_failure_burst: u32,
    #[serde(with = "duration")]
    pub ip_auth_failure_refill: Duration,
    pub max_text_chars: usize,
    pub max_message_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    #[serde(with = "duration")]
    pub heartbeat_interval: Duration,
    pub outbound_queue: usize,
    pub slow_consumer_drops: u32,
    #[serde(with = "duration")]
    pub close_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSettings {
    pub history: usize,
    #[serde(with = "duration")]
    pub presence_interval: Duration,
    /// The widest gap between a room's presence events while joins and
    /// leaves keep coming (the gap doubles per coalesced event).
    #[serde(with = "duration")]
    pub presence_max_interval: Duration,
}

/// Which broker carries messages between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// One process; the embedded default.
    Memory,
    /// Many replicas sharing one Redis.
    Redis,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSettings {
    pub kind: BrokerKind,
    pub redis_url: String,
    pub redis_password_file: String,
    pub redis_ca_file: String,
    pub redis_client_cert_file: String,
    pub redis_client_key_file: String,
    #[serde(with = "duration")]
    pub history_ttl: Duration,
    /// How long a replica's presence count stays counted without a refresh
    /// (a replica that dies stops counting within this time).
    #[serde(with = "duration")]
    pub presence_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    #[serde(with = "duration")]
    pub drain_window: Duration,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
    Auto,
}

/// Whether spans are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TracesMode {
    /// On when `OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT` is set.
    Auto,
    /// Never, whatever the `OTEL_*` variables say.
    Off,
    /// OTLP over HTTP/protobuf to the `OTEL_*` endpoint (default localhost:4318).
    Otlp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_level: String,
    pub traces: TracesMode,
    /// Share of new traces that are recorded, unless `OTEL_TRACES_SAMPLER` says otherwise.
    pub sample_ratio: f64,
}

/// The reference server's variables and the settings they stand for. An
/// explicit `CHAT__...` variable wins over its reference name.
const REFERENCE_VARS: [(&str, &str); 3] = [
    ("PORT", "CHAT__SERVER__PORT"),
    ("CHAT_TOKEN", "CHAT__AUTH__TOKENS"),
    ("ALLOWED_ORIGINS", "CHAT__AUTH__ALLOWED_ORIGINS"),
];

impl Settings {
    /// Loads every layer, then validates the result.
    pub fn load(sources: &Sources) -> Result<Settings, SettingsError> {
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
        for token in &self.auth.tokens {
            if let Err(e) = crate::auth::TokenSecret::parse(token) {
                p.push(format!("auth.tokens: {e}"));
            }
        }
        if !self.auth.tokens_file.is_empty() {
            if let Err(e) = crate::auth::read_tokens_file(&self.auth.tokens_file) {
                p.push(format!("auth.tokens_file: {e}"));
            }
        }
        for origin in self.allowed_origins() {
            if let Err(e) = crate::auth::OriginRule::parse(&origin) {
                p.push(format!("auth.allowed_origins: {e}"));
            }
        }
        if self.tls.enabled() {
            if let Err(e) = crate::tls::load(&self.tls) {
                p.push(format!("tls: {e}"));
            }
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

    /// The allowed origins, or the reference's defaults for the listening port.
    pub fn allowed_origins(&self) -> Vec<String> {
        match &self.auth.allowed_origins {
            Some(list) => list.clone(),
            None => vec![
                format!("http://localhost:{}", self.server.port),
                format!("http://127.0.0.1:{}", self.server.port),
            ],
        }
    }

    /// Trusted proxy networks (validated at load).
    pub fn trusted_proxies(&self) -> Vec<IpNet> {
        self.server
            .trusted_proxies
            .iter()
            .filter_map(|c| parse_cidr(c))
            .collect()
    }

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
        copy.broker.redis_url = redact_url(&copy.broker.redis_url);
        match toml::to_string_pretty(&copy) {
            Ok(text) => text,
            Err(e) => format!("# could not print settings: {e}\n"),
        }
    }
}

fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
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

/// Durations as human strings: "500ms", "30s".
mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration like \"500ms\" or \"30s\": {e}"
            ))
        })
    }
}

/// Lists that the environment writes as comma-separated strings.
mod list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    pub fn split(text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    pub fn serialize<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(text) => split(&text),
            OneOrMany::Many(items) => items.into_iter().map(|s| s.trim().to_string()).collect(),
        })
    }
}

mod opt_list {
    use serde::{Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        super::list::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference_server() {
        let s = Settings::load(&Sources::default()).expect("defaults load");
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
        let s = Settings::load(&Sources::from_env([
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
        let s = Settings::load(&Sources::from_env([("PORT", "8090")])).expect("loads");
        assert_eq!(s.allowed_origins()[0], "http://localhost:8090");
    }

    #[test]
    fn misspelt_and_unknown_keys_are_errors_naming_the_key() {
        let e = Settings::load(&Sources::from_env([("CHAT_SERVER__PORT", "1")])).unwrap_err();
        assert!(e.to_string().contains("CHAT_SERVER__PORT"), "{e}");
        let e = Settings::load(&Sources::from_env([("CHAT__SERVER__PROT", "1")])).unwrap_err();
        assert!(e.to_string().contains("prot"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = Settings::load(&Sources::from_env([
            ("CHAT__AUTH__TOKENS", ""),
            ("CHAT__SERVER__TRUSTED_PROXIES", "10.0.0.0/33"),
            ("CHAT__AUTH__ALLOWED_ORIGINS", "localhost:8080"),
            ("CHAT__ROOMS__PRESENCE_INTERVAL", "2s"),
        ]))
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("auth.tokens"), "{text}");
        assert!(text.contains("server.trusted_proxies"), "{text}");
        assert!(text.contains("auth.allowed_origins"), "{text}");
        assert!(text.contains("rooms.presence_max_interval"), "{text}");
    }

    #[test]
    fn redaction_hides_tokens_and_redis_passwords() {
        let mut s = Settings::load(&Sources::from_env([("CHAT_TOKEN", "hunter2")])).expect("loads");
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
        let s = Settings::load(&Sources::default()).expect("defaults load");
        assert_eq!(s.telemetry.traces, TracesMode::Auto);
        assert_eq!(s.telemetry.sample_ratio, 0.01);
        let s = Settings::load(&Sources::from_env([
            ("CHAT__TELEMETRY__TRACES", "otlp"),
            ("CHAT__TELEMETRY__SAMPLE_RATIO", "0.5"),
        ]))
        .expect("loads");
        assert_eq!(s.telemetry.traces, TracesMode::Otlp);
        assert_eq!(s.telemetry.sample_ratio, 0.5);
        let e = Settings::load(&Sources::from_env([(
            "CHAT__TELEMETRY__SAMPLE_RATIO",
            "1.5",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("telemetry.sample_ratio"), "{e}");
        let e = Settings::load(&Sources::from_env([("CHAT__TELEMETRY__TRACES", "jaeger")]))
            .unwrap_err();
        assert!(e.to_string().contains("jaeger"), "{e}");
    }
}
