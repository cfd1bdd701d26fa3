//! The broker's settings: which broker, and how the Redis broker reaches
//! its Redis (one server, a cluster, or a master behind Sentinels).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::serde_with::{duration, list};

/// Which broker carries messages between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// One process; the embedded default.
    Memory,
    /// Many replicas sharing one Redis.
    Redis,
}

/// How the Redis broker finds its Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One Redis at `redis_url` (the default).
    Standalone,
    /// A Redis Cluster: `redis_urls` are seed nodes; messages go by sharded
    /// pub/sub on the node that owns each room's slot.
    Cluster,
    /// A master found through the Sentinels at `redis_urls`, followed
    /// across failovers.
    Sentinel,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSettings {
    pub kind: BrokerKind,
    pub redis_mode: RedisMode,
    pub redis_url: String,
    /// Cluster seed nodes, or the Sentinels (`redis_mode` cluster/sentinel).
    #[serde(with = "list")]
    pub redis_urls: Vec<String>,
    /// The master's name as the Sentinels know it (`redis_mode = "sentinel"`).
    pub sentinel_master: String,
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

impl BrokerSettings {
    /// Where the data nodes are: `redis_url`, or `redis_urls` (cluster seeds,
    /// or the Sentinels, whose scheme stands for the master's too).
    pub fn redis_addresses(&self) -> Vec<&str> {
        match self.redis_mode {
            RedisMode::Standalone => vec![self.redis_url.as_str()],
            RedisMode::Cluster | RedisMode::Sentinel => {
                self.redis_urls.iter().map(String::as_str).collect()
            }
        }
    }

    /// Whether Redis is reached over TLS (every address is `rediss://`).
    pub fn redis_tls(&self) -> bool {
        let addresses = self.redis_addresses();
        !addresses.is_empty() && addresses.iter().all(|u| u.starts_with("rediss://"))
    }

    /// What is wrong with the Redis addresses, each naming its key.
    pub(super) fn redis_address_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let key = match self.redis_mode {
            RedisMode::Standalone => "broker.redis_url",
            RedisMode::Cluster | RedisMode::Sentinel => "broker.redis_urls",
        };
        let addresses = self.redis_addresses();
        if addresses.is_empty() {
            p.push(format!(
                "{key}: redis_mode = \"{}\" needs at least one address",
                self.mode_name()
            ));
        }
        if addresses
            .iter()
            .any(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
        {
            p.push(format!("{key}: each must start with redis:// or rediss://"));
        } else if !addresses.is_empty()
            && !self.redis_tls()
            && addresses.iter().any(|u| u.starts_with("rediss://"))
        {
            p.push(format!(
                "{key}: mixes redis:// and rediss:// (TLS is all nodes or none)"
            ));
        }
        match self.redis_mode {
            RedisMode::Sentinel if self.sentinel_master.trim().is_empty() => p.push(
                "broker.sentinel_master: redis_mode = \"sentinel\" needs the master's name".into(),
            ),
            RedisMode::Standalone | RedisMode::Cluster if !self.sentinel_master.is_empty() => {
                p.push("broker.sentinel_master: only used with redis_mode = \"sentinel\"".into())
            }
            _ => {}
        }
        if self.redis_mode == RedisMode::Standalone && !self.redis_urls.is_empty() {
            p.push(
                "broker.redis_urls: only used with redis_mode = \"cluster\" or \"sentinel\" \
                 (standalone uses redis_url)"
                    .into(),
            );
        }
        p
    }

    fn mode_name(&self) -> &'static str {
        match self.redis_mode {
            RedisMode::Standalone => "standalone",
            RedisMode::Cluster => "cluster",
            RedisMode::Sentinel => "sentinel",
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{RedisMode, Settings, SettingsError, Sources};

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let mut env = vec![("CHAT__BROKER__KIND", "redis")];
        env.extend_from_slice(vars);
        Settings::load(&Sources::from_env(env), |_| Vec::new())
    }

    fn problems(vars: &[(&str, &str)]) -> String {
        load(vars)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn cluster_and_sentinel_take_a_list_of_addresses() {
        let s = load(&[
            ("CHAT__BROKER__REDIS_MODE", "cluster"),
            (
                "CHAT__BROKER__REDIS_URLS",
                "redis://10.0.0.1:6379, redis://10.0.0.2:6379",
            ),
        ])
        .expect("loads");
        assert_eq!(s.broker.redis_mode, RedisMode::Cluster);
        assert_eq!(s.broker.redis_addresses().len(), 2);
        let s = load(&[
            ("CHAT__BROKER__REDIS_MODE", "sentinel"),
            ("CHAT__BROKER__REDIS_URLS", "rediss://10.0.0.5:26379"),
            ("CHAT__BROKER__SENTINEL_MASTER", "chat"),
        ])
        .expect("loads");
        assert!(s.broker.redis_tls());
    }

    #[test]
    fn each_mode_names_what_it_misses() {
        let e = problems(&[("CHAT__BROKER__REDIS_MODE", "cluster")]);
        assert!(
            e.contains("broker.redis_urls: redis_mode = \"cluster\" needs"),
            "{e}"
        );
        let e = problems(&[
            ("CHAT__BROKER__REDIS_MODE", "sentinel"),
            ("CHAT__BROKER__REDIS_URLS", "redis://10.0.0.5:26379"),
        ]);
        assert!(e.contains("broker.sentinel_master"), "{e}");
        let e = problems(&[
            ("CHAT__BROKER__REDIS_MODE", "cluster"),
            (
                "CHAT__BROKER__REDIS_URLS",
                "redis://10.0.0.1:6379,rediss://10.0.0.2:6379",
            ),
        ]);
        assert!(e.contains("mixes redis:// and rediss://"), "{e}");
        let e = problems(&[
            ("CHAT__BROKER__REDIS_MODE", "cluster"),
            ("CHAT__BROKER__REDIS_URLS", "10.0.0.1:6379"),
        ]);
        assert!(e.contains("must start with redis://"), "{e}");
        let e = problems(&[("CHAT__BROKER__REDIS_URLS", "redis://10.0.0.1:6379")]);
        assert!(e.contains("broker.redis_urls: only used with"), "{e}");
        let e = problems(&[("CHAT__BROKER__REDIS_MODE", "ring")]);
        assert!(e.contains("redis_mode"), "{e}");
    }

    #[test]
    fn sentinel_passwords_in_urls_are_redacted() {
        let s = load(&[
            ("CHAT__BROKER__REDIS_MODE", "sentinel"),
            (
                "CHAT__BROKER__REDIS_URLS",
                "redis://:hunter2@10.0.0.5:26379",
            ),
            ("CHAT__BROKER__SENTINEL_MASTER", "chat"),
        ])
        .expect("loads");
        let shown = s.redacted();
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
