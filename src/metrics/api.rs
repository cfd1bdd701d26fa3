//! The server API's metrics: requests by endpoint and status, their
//! duration, idempotent replays, and audit records by action.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use super::{counter, counter_vec, register, BROKER_BUCKETS};
use crate::telemetry::audit::AuditAction;

/// An API endpoint, as the `endpoint` label (never a room or user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiEndpoint {
    Publish,
    PublishMany,
    History,
    Delete,
    Members,
    Rooms,
    Kick,
    Disconnect,
    /// Any other path under `/api/`.
    Other,
}

impl ApiEndpoint {
    /// Every endpoint, for label pre-registration.
    pub const ALL: [ApiEndpoint; 9] = [
        ApiEndpoint::Publish,
        ApiEndpoint::PublishMany,
        ApiEndpoint::History,
        ApiEndpoint::Delete,
        ApiEndpoint::Members,
        ApiEndpoint::Rooms,
        ApiEndpoint::Kick,
        ApiEndpoint::Disconnect,
        ApiEndpoint::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiEndpoint::Publish => "publish",
            ApiEndpoint::PublishMany => "publish_many",
            ApiEndpoint::History => "history",
            ApiEndpoint::Delete => "delete",
            ApiEndpoint::Members => "members",
            ApiEndpoint::Rooms => "rooms",
            ApiEndpoint::Kick => "kick",
            ApiEndpoint::Disconnect => "disconnect",
            ApiEndpoint::Other => "other",
        }
    }
}

/// Every status the API answers with (the `code` label).
const CODES: [u16; 12] = [200, 201, 204, 400, 401, 403, 404, 405, 413, 415, 500, 503];

/// Server API requests, durations, replays and audit records.
pub struct ApiMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    /// Publishes answered from an earlier one with the same idempotency key.
    pub replays: IntCounter,
    audit: IntCounterVec,
}

impl ApiMetrics {
    pub(super) fn new(r: &Registry) -> ApiMetrics {
        let requests = IntCounterVec::new(
            Opts::new(
                "wschat_api_requests_total",
                "Server API requests, by endpoint and HTTP status.",
            ),
            &["endpoint", "code"],
        )
        .unwrap_or_else(|e| panic!("wschat_api_requests_total: {e}"));
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "wschat_api_request_duration_seconds",
                "Server API request handling time, by endpoint.",
            )
            .buckets(BROKER_BUCKETS.to_vec()),
            &["endpoint"],
        )
        .unwrap_or_else(|e| panic!("wschat_api_request_duration_seconds: {e}"));
        for e in ApiEndpoint::ALL {
            duration.with_label_values(&[e.as_str()]);
            for code in CODES {
                requests.with_label_values(&[e.as_str(), label(code)]);
            }
        }
        register(r, requests.clone());
        register(r, duration.clone());
        ApiMetrics {
            requests,
            duration,
            replays: counter(
                r,
                "wschat_api_idempotent_replays_total",
                "API publishes answered with an earlier publish's result (same idempotencyKey).",
            ),
            audit: counter_vec(
                r,
                "wschat_audit_records_total",
                "Audit log records written, by action.",
                "action",
                &AuditAction::ALL.map(AuditAction::as_str),
            ),
        }
    }

    /// Counts one request answered with `status` after `seconds`.
    pub fn request(&self, endpoint: ApiEndpoint, status: u16, seconds: f64) {
        (self.requests)
            .with_label_values(&[endpoint.as_str(), label(status)])
            .inc();
        (self.duration)
            .with_label_values(&[endpoint.as_str()])
            .observe(seconds);
    }

    /// Counts one audit record.
    pub fn audited(&self, action: AuditAction) {
        self.audit.with_label_values(&[action.as_str()]).inc();
    }
}

/// The `code` label of a status; any status not in [`CODES`] counts as 500.
fn label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        415 => "415",
        503 => "503",
        _ => "500",
    }
}
