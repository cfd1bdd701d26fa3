//! Settings: the plain-data types, their sources, and redaction for printing;
//! loading and validation live in `load`.
//!
//! Settings are plain data, parsed completely before anything binds. Every
//! source is injectable ([`Sources`]) so tests never touch the process
//! environment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

mod api;
mod broker;
mod load;
mod namespaces;
mod redact;
mod serde_with;

pub use api::{ApiKeySettings, ApiSettings};
pub use broker::{BrokerKind, BrokerSettings, RedisMode};
pub use namespaces::{sent_at, Delivery, NamespaceSettings, Policy};
pub use redact::redact_url;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_with::{byte_size, duration, list, opt_list};

/// The embedded defaults: the reference server's behaviour.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

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
    pub api: ApiSettings,
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
    /// Largest request head (request line and headers) in bytes; over it 431.
    pub max_header_bytes: usize,
    /// Connections that have not upgraded, on the whole public listener.
    pub max_http_connections: u32,
    /// Connections that have not upgraded, per client key (not for trusted proxies).
    pub ip_max_http_connections: u32,
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
    /// Display names guests may not take (matched ignoring case, spaces,
    /// `-` and `_`); a guest asking for one is named `guest`.
    #[serde(with = "list")]
    pub reserved_names: Vec<String>,
    /// A same-origin path (`/token`) where the browser page fetches a fresh
    /// token before its JWT expires; empty: the page does not refresh.
    pub page_token_url: String,
    /// Set by loading, not by any layer: `auth.tokens` is the embedded
    /// default (the built-in dev token), which only loopback clients may use.
    #[serde(skip)]
    pub builtin_dev_token: bool,
    /// How long before a JWT's `exp` a connection is warned (validated now,
    /// used by the expiry timer).
    #[serde(with = "duration")]
    pub expiry_warning: Duration,
    pub jwt: JwtSettings,
}

/// JSON Web Tokens: on when keys or a JWKS source are configured.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Secrets (HS*) and PEM public keys, each for one algorithm.
    #[serde(default)]
    pub keys: Vec<JwtKeySettings>,
    /// A JWKS document in a file (re-read when it changes).
    pub jwks_file: String,
    /// A JWKS document at an `http(s)://` URL (re-read periodically).
    pub jwks_url: String,
    /// How often the JWKS URL is re-read.
    #[serde(with = "duration")]
    pub jwks_refresh: Duration,
    /// The shortest gap between two reads of the JWKS URL (a token with an
    /// unknown `kid` asks for one; failures retry after this).
    #[serde(with = "duration")]
    pub jwks_min_refresh: Duration,
    /// Accepted `aud` values; empty: `aud` is not checked.
    #[serde(with = "list")]
    pub audience: Vec<String>,
    /// Accepted `iss` values; empty: `iss` is not checked.
    #[serde(with = "list")]
    pub issuer: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    #[serde(with = "duration")]
    pub leeway: Duration,
}

impl JwtSettings {
    /// Whether JWTs are accepted at all.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty() || !self.jwks_file.is_empty() || !self.jwks_url.is_empty()
    }
}

/// One `[[auth.jwt.keys]]` entry: `alg`, optional `kid`, and exactly one of
/// `secret`, `secret_file` (HS*) or `public_key_file` (PEM). Its `Debug`
/// hides the secret.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeySettings {
    pub alg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key_file: String,
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
    /// Open connections per identified user, across all of its IPs.
    pub user_max_connections: u32,
    /// Messages per identified user, across all of its connections.
    pub user_message_burst: u32,
    #[serde(with = "duration")]
    pub user_message_refill: Duration,
    /// IPv6 clients are keyed by this many leading bits (1..=128).
    pub ipv6_prefix: u8,
    pub max_text_chars: usize,
    pub max_message_bytes: usize,
    /// Rooms one connection may hold at once (version 2 `join`).
    pub max_rooms_per_connection: usize,
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
    /// Fan-out writes to an idle plain-TCP socket itself instead of waking
    /// the connection's task (on in the embedded defaults; docs/performance.md).
    #[serde(default)]
    pub direct_writes: bool,
    /// With `direct_writes`, each connection's kernel send buffer (SO_SNDBUF,
    /// which Linux doubles): what a reader that stalls can hold in the kernel
    /// before frames queue and count against `outbound_queue`.
    #[serde(with = "byte_size")]
    pub direct_write_buffer: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSettings {
    pub history: usize,
    /// The memory broker's budget for every room's history together, in
    /// bytes; past it the least recently active rooms without members lose
    /// their history first.
    #[serde(with = "byte_size")]
    pub history_bytes: u64,
    #[serde(with = "duration")]
    pub presence_interval: Duration,
    /// The widest gap between a room's presence events while joins and
    /// leaves keep coming (the gap doubles per coalesced event).
    #[serde(with = "duration")]
    pub presence_max_interval: Duration,
    /// After a fan-out pass of 1 ms or more that carried two frames or more,
    /// the room's next pass waits this share of the pass's length (0:
    /// never), so that what is published meanwhile reaches each member in
    /// one write.
    pub fanout_pause: f64,
    /// The longest such pause.
    #[serde(with = "duration")]
    pub fanout_pause_max: Duration,
    /// Per-pattern policies; first match wins (see [`RoomSettings::policy`]).
    #[serde(default)]
    pub namespaces: Vec<NamespaceSettings>,
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

impl Settings {
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

    /// Trusted proxy networks (validated at load), IPv4-mapped ones
    /// (`::ffff:10.0.0.0/104`) as the IPv4 networks they are, since client
    /// addresses are compared in that form too.
    pub fn trusted_proxies(&self) -> Vec<IpNet> {
        self.server
            .trusted_proxies
            .iter()
            .filter_map(|c| parse_cidr(c))
            .map(unmap_cidr)
            .collect()
    }
}

fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// `::ffff:a.b.c.d/n` with n >= 96 → `a.b.c.d/(n - 96)`; anything else as is.
fn unmap_cidr(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}
