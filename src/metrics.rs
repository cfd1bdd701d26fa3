//! Prometheus metrics: one registry per server, label handles resolved once.
//!
//! No label ever takes a room, user, token, IP or connection id: every label
//! value comes from a closed set defined in code.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::protocol::close::{CloseCode, ABNORMAL_LABEL};
use crate::protocol::ErrorCode;

mod api;
mod edge;
mod jwt;
mod rooms;

pub use api::{ApiEndpoint, ApiMetrics};
pub use edge::{AddressSource, EdgeMetrics, HttpRefusal, RejectReason};
pub use jwt::{JwtMetrics, RefreshOutcome};
pub use rooms::{DeleteOutcome, JoinOutcome, LeaveReason, RoomMetrics, WhoOutcome};

/// Fan-out latency buckets, 50 µs to 5 s.
pub const FANOUT_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];
/// Broker publish latency buckets, 50 µs to 5 s.
pub const BROKER_BUCKETS: &[f64] = FANOUT_BUCKETS;
/// Outbound queue depth buckets (frames).
pub const QUEUE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// A broker operation, as the `op` label of `wschat_broker_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerOp {
    Publish,
    History,
    Presence,
    Subscribe,
    Delete,
}

impl BrokerOp {
    /// Every operation, for label pre-registration.
    pub const ALL: [BrokerOp; 5] = [
        BrokerOp::Publish,
        BrokerOp::History,
        BrokerOp::Presence,
        BrokerOp::Subscribe,
        BrokerOp::Delete,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerOp::Publish => "publish",
            BrokerOp::History => "history",
            BrokerOp::Presence => "presence",
            BrokerOp::Subscribe => "subscribe",
            BrokerOp::Delete => "delete",
        }
    }
}

/// Every metric handle the server updates.
pub struct Metrics {
    pub registry: Registry,
    pub connections: IntGauge,
    pub accepted: IntCounter,
    closed: IntCounterVec,
    pub received: IntCounter,
    pub accepted_messages: IntCounter,
    rejected: IntCounterVec,
    pub delivered: IntCounter,
    pub fanout_latency: Histogram,
    pub broker_latency: Histogram,
    broker_errors: IntCounterVec,
    pub broker_reconnects: IntCounter,
    pub broker_master_changes: IntCounter,
    pub broker_lost_messages: IntCounter,
    pub broker_up: IntGauge,
    pub drops_slow_consumer: IntCounter,
    pub drops_queue_full: IntCounter,
    pub drops_closed: IntCounter,
    /// Frames of a `delivery = "latest"` room replaced by a newer one.
    pub drops_superseded: IntCounter,
    pub slow_consumer_closes: IntCounter,
    pub pings: IntCounter,
    pub pongs: IntCounter,
    pub heartbeat_timeouts: IntCounter,
    pub rate_limited_connection: IntCounter,
    pub rate_limited_ip: IntCounter,
    pub rate_limited_user: IntCounter,
    pub rooms_active: IntGauge,
    pub history_messages: IntGauge,
    pub history_bytes: IntGauge,
    pub history_evictions: IntCounter,
    pub history_trimmed: IntCounter,
    pub queue_depth: Histogram,
    reloads: IntCounterVec,
    pub revocation_closes: IntCounter,
    pub ready: IntGauge,
    /// Before the upgrade: HTTP connections and client addresses.
    pub edge: EdgeMetrics,
    /// JWT checks and JWKS reads.
    pub jwt: JwtMetrics,
    pub rooms: RoomMetrics,
    /// The server API and the audit log.
    pub api: ApiMetrics,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(r, c.clone());
    c
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: &[&str],
) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    // Pre-create every series so dashboards see zeros, not gaps.
    for v in values {
        c.with_label_values(&[v]);
    }
    register(r, c.clone());
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(r, g.clone());
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(r, h.clone());
    h
}

fn register<C: prometheus::core::Collector + 'static>(r: &Registry, c: C) {
    // Names are constants in this file; a clash is a programming error caught by tests.
    if let Err(e) = r.register(Box::new(c)) {
        panic!("registering a metric: {e}");
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let close_labels: Vec<&str> = CloseCode::ALL
            .iter()
            .map(|c| c.label())
            .chain([ABNORMAL_LABEL])
            .collect();
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let drops = counter_vec(
            &r,
            "wschat_drops_total",
            "Frames not delivered to a connection, by reason.",
            "reason",
            &["slow_consumer", "queue_full", "closed", "superseded"],
        );
        let limited = counter_vec(
            &r,
            "wschat_rate_limited_total",
            "Messages refused by a rate limit, by scope.",
            "scope",
            &["connection", "ip", "user"],
        );
        let build = IntGaugeVec::new(
            Opts::new("wschat_build_info", "Build information; always 1."),
            &["version", "git_sha"],
        )
        .unwrap_or_else(|e| panic!("metric build_info: {e}"));
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("WSCHAT_GIT_SHA").unwrap_or("unknown"),
            ])
            .set(1);
        register(&r, build);
        #[cfg(target_os = "linux")]
        register(
            &r,
            prometheus::process_collector::ProcessCollector::for_self(),
        );

        Metrics {
            connections: gauge(&r, "wschat_connections", "WebSocket connections open now."),
            accepted: counter(
                &r,
                "wschat_connections_accepted_total",
                "WebSocket connections accepted.",
            ),
            closed: counter_vec(
                &r,
                "wschat_connections_closed_total",
                "WebSocket connections closed, by the close code the server sent or echoed.",
                "code",
                &close_labels,
            ),
            received: counter(
                &r,
                "wschat_messages_received_total",
                "Client text messages received.",
            ),
            accepted_messages: counter(
                &r,
                "wschat_messages_accepted_total",
                "Messages accepted into a room, from clients and from the server API.",
            ),
            rejected: counter_vec(
                &r,
                "wschat_messages_rejected_total",
                "Client messages refused, by error code.",
                "code",
                &codes,
            ),
            delivered: counter(
                &r,
                "wschat_messages_delivered_total",
                "Chat message frames written to client sockets.",
            ),
            fanout_latency: histogram(
                &r,
                "wschat_fanout_latency_seconds",
                "From accepting a message to its frame being written to a recipient's socket.",
                FANOUT_BUCKETS,
            ),
            broker_latency: histogram(
                &r,
                "wschat_broker_publish_latency_seconds",
                "Time the broker takes to accept a publish.",
                BROKER_BUCKETS,
            ),
            broker_errors: counter_vec(
                &r,
                "wschat_broker_errors_total",
                "Broker operations that failed, by operation.",
                "op",
                &BrokerOp::ALL.map(BrokerOp::as_str),
            ),
            broker_reconnects: counter(
                &r,
                "wschat_broker_reconnects_total",
                "Broker reconnections.",
            ),
            broker_master_changes: counter(
                &r,
                "wschat_broker_master_changes_total",
                "Times the Sentinels named a new Redis master and this replica moved to it.",
            ),
            broker_lost_messages: counter(
                &r,
                "wschat_broker_lost_messages_total",
                "Messages Redis lost in a failover after they were delivered: their seqs were skipped (counted once, by the replica that moved the room's counter).",
            ),
            broker_up: gauge(&r, "wschat_broker_up", "1 while the broker is reachable."),
            drops_slow_consumer: drops.with_label_values(&["slow_consumer"]),
            drops_queue_full: drops.with_label_values(&["queue_full"]),
            drops_closed: drops.with_label_values(&["closed"]),
            drops_superseded: drops.with_label_values(&["superseded"]),
            slow_consumer_closes: counter(
                &r,
                "wschat_slow_consumer_closes_total",
                "Connections closed with 1013 because they could not keep up.",
            ),
            pings: counter(&r, "wschat_heartbeat_pings_total", "Heartbeat pings sent."),
            pongs: counter(&r, "wschat_heartbeat_pongs_total", "Pongs received."),
            heartbeat_timeouts: counter(
                &r,
                "wschat_heartbeat_timeouts_total",
                "Connections terminated for not answering a ping.",
            ),
            rate_limited_connection: limited.with_label_values(&["connection"]),
            rate_limited_ip: limited.with_label_values(&["ip"]),
            rate_limited_user: limited.with_label_values(&["user"]),
            rooms_active: gauge(
                &r,
                "wschat_rooms_active",
                "Rooms with members on this replica.",
            ),
            history_messages: gauge(
                &r,
                "wschat_history_messages",
                "Messages held in room histories.",
            ),
            history_bytes: gauge(
                &r,
                "wschat_history_bytes",
                "Bytes charged to room histories against rooms.history_bytes (memory broker).",
            ),
            history_evictions: counter(
                &r,
                "wschat_history_evictions_total",
                "Rooms without members whose whole history was dropped to stay under rooms.history_bytes.",
            ),
            history_trimmed: counter(
                &r,
                "wschat_history_trimmed_total",
                "Oldest messages dropped from rooms with members to stay under rooms.history_bytes.",
            ),
            queue_depth: histogram(
                &r,
                "wschat_outbound_queue_depth",
                "Frames drained from a connection's queue in one go.",
                QUEUE_BUCKETS,
            ),
            reloads: counter_vec(
                &r,
                "wschat_config_reloads_total",
                "Configuration reloads, by outcome.",
                "outcome",
                &["success", "failure"],
            ),
            revocation_closes: counter(
                &r,
                "wschat_token_revocation_closes_total",
                "Connections closed with 1008 because their token was revoked.",
            ),
            ready: gauge(
                &r,
                "wschat_ready",
                "1 while this replica accepts connections.",
            ),
            edge: EdgeMetrics::new(&r),
            jwt: JwtMetrics::new(&r),
            rooms: RoomMetrics::new(&r),
            api: ApiMetrics::new(&r),
            registry: r,
        }
    }

    /// Counts a closed connection by the code sent (or `abnormal`).
    pub fn closed(&self, code: Option<CloseCode>) {
        let label = code.map_or(ABNORMAL_LABEL, CloseCode::label);
        self.closed.with_label_values(&[label]).inc();
    }

    /// Counts a refused client message.
    pub fn rejected_message(&self, code: ErrorCode) {
        self.rejected.with_label_values(&[code.as_str()]).inc();
    }

    /// Counts a failed broker operation.
    pub fn broker_error(&self, op: BrokerOp) {
        self.broker_errors.with_label_values(&[op.as_str()]).inc();
    }

    /// Counts a configuration reload.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
    }

    /// The text exposition.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
