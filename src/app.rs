//! The shared state of one server: settings, auth, limits, rooms, broker,
//! metrics, and the shutdown state every task can see.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ipnet::IpNet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::api_keys::ApiKeys;
use crate::auth::{Auth, AuthError, Credential, Grant, Refusal};
use crate::broker::{Backend, BrokerSetupError, ControlRequest, MemoryBroker, RedisBroker};
use crate::config::{BrokerKind, Settings, SettingsError, Sources};
use crate::fanout::deadlines::{Deadlines, Expiry};
use crate::fanout::directory::Directory;
use crate::fanout::rooms::{Member, Rooms};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::telemetry::audit::{self, AuditRecord};
use crate::tls::{Tls, TlsError};

/// Everything a connection needs, shared by all of them.
pub struct App {
    pub(crate) settings: Settings,
    /// Where the settings came from, to load them again on reload.
    pub(crate) sources: Sources,
    pub(crate) auth: Auth,
    /// The server API's keys (none: the API is off).
    pub(crate) api_keys: ApiKeys,
    pub(crate) limits: Limits,
    pub(crate) rooms: Arc<Rooms>,
    /// Every local connection, in rooms or not.
    pub(crate) connections: Directory,
    /// Token warnings and expiry closes of connections whose token expires.
    pub(crate) deadlines: Deadlines,
    pub(crate) broker: Backend,
    /// Kicks and disconnects the broker carries here, until `run` takes
    /// them to apply (see `session::control`).
    pub(crate) control: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ControlRequest>>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) trusted_proxies: Vec<IpNet>,
    /// In-process TLS, when configured.
    pub(crate) tls: Option<Tls>,
    /// Every task that must finish before the process exits.
    pub(crate) tasks: TaskTracker,
    /// Cancelled when the drain starts.
    pub(crate) draining: CancellationToken,
    /// Cancelled when the drain is over: listeners and helpers stop.
    pub(crate) stopped: CancellationToken,
    ready: AtomicBool,
    /// Whether the ignored `X-Forwarded-For` warning was logged.
    forwarding_warned: AtomicBool,
}

/// Why a server could not start from settings that loaded: the part that
/// failed says what (a file it could not read, a Redis URL it could not use).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("auth: {0}")]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Broker(#[from] BrokerSetupError),
    #[error("{0}")]
    Api(String),
}

impl App {
    /// Builds the server state from validated settings.
    pub fn new(settings: Settings, sources: Sources) -> Result<Arc<App>, StartError> {
        // rediss:// builds its rustls client with the process default: make
        // it ring, as for our own TLS, whatever features other crates enable.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = Arc::new(Metrics::new());
        let rooms = Arc::new(Rooms::new(metrics.clone(), settings.rooms.clone()));
        let (control_tx, control_rx) = tokio::sync::mpsc::unbounded_channel();
        let broker = match settings.broker.kind {
            BrokerKind::Memory => Backend::Memory(MemoryBroker::new(
                rooms.clone(),
                metrics.clone(),
                settings.rooms.clone(),
                usize::try_from(settings.rooms.history_bytes).unwrap_or(usize::MAX),
                settings.broker.history_ttl,
                control_tx,
            )),
            BrokerKind::Redis => Backend::Redis(RedisBroker::new(
                &settings.broker,
                settings.rooms.clone(),
                rooms.clone(),
                metrics.clone(),
                control_tx,
            )?),
        };
        let auth = Auth::new(&settings)?;
        let api_keys = ApiKeys::new(&settings.api).map_err(StartError::Api)?;
        let tls = match settings.tls.enabled() {
            true => Some(Tls::new(&settings.tls)?),
            false => None,
        };
        if settings.broker.kind == BrokerKind::Memory {
            metrics.broker_up.set(1);
        }
        Ok(Arc::new(App {
            auth,
            api_keys,
            control: Mutex::new(Some(control_rx)),
            limits: Limits::new(&settings.limits),
            trusted_proxies: settings.trusted_proxies(),
            tls,
            rooms,
            connections: Directory::default(),
            deadlines: Deadlines::default(),
            broker,
            metrics,
            tasks: TaskTracker::new(),
            draining: CancellationToken::new(),
            stopped: CancellationToken::new(),
            ready: AtomicBool::new(true),
            forwarding_warned: AtomicBool::new(false),
            settings,
            sources,
        }))
    }

    /// Says once per process that `peer`'s `X-Forwarded-For` was ignored:
    /// behind a proxy missing from `server.trusted_proxies`, every client
    /// shares the proxy's address for the per-IP limits and the token
    /// lock-out, which is easy to miss until they start refusing people.
    pub fn forwarding_ignored(&self, peer: std::net::IpAddr) {
        if !self.forwarding_warned.load(Ordering::Relaxed)
            && !self.forwarding_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                %peer,
                "X-Forwarded-For ignored: this peer is not in server.trusted_proxies. If ws-chat \
                 is behind a proxy or ingress, add its addresses there, or all clients behind it \
                 share one address for the per-IP limits and the token lock-out (logged once)"
            );
        }
    }

    /// Checks a presented token (at the upgrade, or in a `refresh`),
    /// counting a JWT's refusal by why. `None`: refused.
    pub fn authenticate(&self, token: &str) -> Option<(Credential, Arc<Grant>)> {
        match self.auth.authenticate(token) {
            Ok(admitted) => Some(admitted),
            Err(Refusal::Unknown) => None,
            Err(Refusal::Jwt(failure)) => {
                self.metrics.jwt.failure(failure);
                tracing::debug!(jwt = failure.as_str(), "token refused");
                None
            }
        }
    }

    /// Schedules `member`'s token warning and 4001 close for a token that
    /// expires at `expires` (replacing earlier ones), or drops them when
    /// its token does not expire.
    pub fn schedule_expiry(&self, member: &Arc<Member>, expires: Option<SystemTime>) {
        match expires {
            Some(at) => {
                let warning = self.settings.auth.expiry_warning;
                let expiry = Expiry::new(at, warning, self.auth.jwt.leeway());
                self.deadlines.schedule(member, expiry);
            }
            None => self.deadlines.cancel(member.id),
        }
    }

    /// Writes an audit record and counts it.
    pub fn audit(&self, record: &AuditRecord<'_>) {
        audit::write(record);
        self.metrics.api.audited(record.action);
    }

    /// Whether the drain has started.
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Readiness: not draining, and the broker can accept messages.
    pub fn is_ready(&self) -> bool {
        use crate::broker::Broker;
        self.ready.load(Ordering::Relaxed) && !self.is_draining() && self.broker.is_ready()
    }

    /// Marks the replica not ready (the first step of a drain).
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Relaxed);
        self.metrics.ready.set(0);
    }
}
