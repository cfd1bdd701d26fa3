//! Making the broker's connection from its settings: one server, a Redis
//! Cluster, or the master the Sentinels name. The password file and the TLS
//! files apply to every data node; nothing here connects yet (the broker
//! reports not ready until Redis answers), so only bad settings fail.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{IntoConnectionInfo, ProtocolVersion};

use super::conn::{Conn, Lazy};
use super::follow::{Follower, MakeManager};
use super::link::Status;
use crate::broker::BrokerSetupError;
use crate::config::{redact_url, BrokerSettings, RedisMode};

/// Longest wait between reconnect attempts (keeps recovery under 2 s).
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Each connection attempt, and each reply, gets at most this long.
const NODE_TIMEOUT: Duration = Duration::from_secs(1);

/// What connecting made.
pub(super) struct Made {
    pub conn: Conn,
    /// One server's client, for a fresh connection that says why Redis does
    /// not answer (the manager only retries).
    pub client: Option<redis::Client>,
    /// The Sentinel follower, to be run.
    pub follower: Option<Arc<Follower>>,
}

/// The password and TLS material every data node gets.
#[derive(Clone, Default)]
struct Secrets {
    password: Option<String>,
    root_cert: Option<Vec<u8>>,
    client_tls: Option<(Vec<u8>, Vec<u8>)>,
}

impl Secrets {
    fn read(settings: &BrokerSettings) -> Result<Secrets, BrokerSetupError> {
        let read = |key: &'static str, path: &str| {
            std::fs::read(path).map_err(|e| BrokerSetupError {
                key,
                reason: format!("{path}: {e}"),
            })
        };
        let password = match settings.redis_password_file.as_str() {
            "" => None,
            path => {
                let text = String::from_utf8(read("redis_password_file", path)?).map_err(|_| {
                    BrokerSetupError {
                        key: "redis_password_file",
                        reason: format!("{path}: not UTF-8"),
                    }
                })?;
                // The password is never logged; only the file name is.
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            }
        };
        let root_cert = match settings.redis_ca_file.as_str() {
            "" => None,
            path => Some(read("redis_ca_file", path)?),
        };
        // Validation makes these come as a pair.
        let client_tls = match settings.redis_client_cert_file.as_str() {
            "" => None,
            path => Some((
                read("redis_client_cert_file", path)?,
                read("redis_client_key_file", &settings.redis_client_key_file)?,
            )),
        };
        Ok(Secrets {
            password,
            root_cert,
            client_tls,
        })
    }

    /// The private CA and client certificate, when either is set.
    fn certs(&self) -> Option<redis::TlsCertificates> {
        if self.root_cert.is_none() && self.client_tls.is_none() {
            return None;
        }
        Some(redis::TlsCertificates {
            client_tls: self
                .client_tls
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: self.root_cert.clone(),
        })
    }

    /// A client for `url` with RESP3, the password and the certificates.
    fn client(&self, url: &str, password: bool) -> redis::RedisResult<redis::Client> {
        let info = url.into_connection_info()?;
        let mut redis = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        if let Some(pw) = self.password.as_deref().filter(|_| password) {
            redis = redis.set_password(pw);
        }
        let info = info.set_redis_settings(redis);
        match self.certs() {
            None => redis::Client::open(info),
            Some(certs) => redis::Client::build_with_tls(info, certs),
        }
    }
}

/// Makes the broker's connection for `settings.redis_mode`.
pub(super) fn connect(
    settings: &BrokerSettings,
    status: Arc<Status>,
) -> Result<Made, BrokerSetupError> {
    let secrets = Secrets::read(settings)?;
    match settings.redis_mode {
        RedisMode::Standalone => {
            let url = &settings.redis_url;
            let bad = |e| bad_url("redis_url", url, e);
            let client = secrets.client(url, true).map_err(bad)?;
            let conn = manager(client.clone(), status).map_err(bad)?;
            Ok(Made {
                conn: Conn::Single(conn),
                client: Some(client),
                follower: None,
            })
        }
        RedisMode::Cluster => {
            let shown = settings.redis_urls.join(",");
            let bad = |e| bad_url("redis_urls", &shown, e);
            let mut nodes =
                ClusterClientBuilder::new(settings.redis_urls.iter().map(String::as_str))
                    .use_protocol(ProtocolVersion::RESP3)
                    .push_sender(move |info| status.push(info))
                    .connection_timeout(NODE_TIMEOUT)
                    .response_timeout(NODE_TIMEOUT);
            if let Some(pw) = &secrets.password {
                nodes = nodes.password(pw);
            }
            if let Some(certs) = secrets.certs() {
                nodes = nodes.certs(certs);
            }
            let client = nodes.build().map_err(bad)?;
            Ok(Made {
                conn: Conn::Cluster(Arc::new(Lazy::new(client))),
                client: None,
                follower: None,
            })
        }
        RedisMode::Sentinel => {
            let mut sentinels = Vec::new();
            for url in &settings.redis_urls {
                // A Sentinel's own password comes in its URL, not the file.
                let client = secrets.client(url, false);
                sentinels.push(client.map_err(|e| bad_url("redis_urls", url, e))?);
            }
            let scheme = if settings.redis_tls() {
                "rediss"
            } else {
                "redis"
            };
            let make: MakeManager = Box::new(move |host, port| {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                let client = secrets.client(&format!("{scheme}://{host}:{port}"), true)?;
                manager(client, status.clone())
            });
            let follower = Arc::new(Follower::new(
                sentinels,
                settings.sentinel_master.clone(),
                make,
            ));
            Ok(Made {
                conn: Conn::Sentinel(follower.clone()),
                client: None,
                follower: Some(follower),
            })
        }
    }
}

/// A lazily connecting RESP3 manager: retries forever with a short backoff,
/// resubscribes by itself, and hands pushes to the receiver.
fn manager(client: redis::Client, status: Arc<Status>) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_push_sender(move |info| status.push(info))
        .set_automatic_resubscription()
        // The default (6 retries) gives up silently: the subscription is then
        // gone for good. Never give up; back off at most MAX_BACKOFF.
        .set_number_of_retries(usize::MAX)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(MAX_BACKOFF)
        .set_connection_timeout(Some(NODE_TIMEOUT))
        .set_response_timeout(Some(NODE_TIMEOUT));
    ConnectionManager::new_lazy_with_config(client, config)
}

fn bad_url(key: &'static str, url: &str, e: redis::RedisError) -> BrokerSetupError {
    BrokerSetupError {
        key,
        reason: format!("`{}`: {e}", redact_url(url)),
    }
}
