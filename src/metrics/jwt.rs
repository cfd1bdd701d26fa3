//! The metrics of identified users: tokens refused as JWTs, by why, token
//! refreshes, and the JWKS document's reads and keys.

use prometheus::{IntCounterVec, IntGauge, Registry};

use super::{counter_vec, gauge};
use crate::auth::JwtFailure;

/// What became of a client's `refresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    Refreshed,
    /// Invalid, expired, another user's, or sent by a guest.
    Refused,
}

impl RefreshOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Refreshed => "refreshed",
            RefreshOutcome::Refused => "refused",
        }
    }
}

/// JWT checks, refreshes and JWKS reads.
pub struct JwtMetrics {
    failures: IntCounterVec,
    refreshes: IntCounterVec,
    fetches: IntCounterVec,
    /// Verification keys in use from `auth.jwt.jwks_url`.
    pub jwks_keys: IntGauge,
    /// When the JWKS URL was last read successfully (Unix seconds).
    pub jwks_last_success: IntGauge,
}

impl JwtMetrics {
    pub(super) fn new(r: &Registry) -> JwtMetrics {
        JwtMetrics {
            failures: counter_vec(
                r,
                "wschat_jwt_failures_total",
                "Tokens refused as JWTs (also counted as upgrade rejections with reason token), by why.",
                "reason",
                &JwtFailure::ALL.map(JwtFailure::as_str),
            ),
            refreshes: counter_vec(
                r,
                "wschat_token_refreshes_total",
                "Client refresh messages, by outcome (refused: the connection keeps its old token).",
                "outcome",
                &[
                    RefreshOutcome::Refreshed.as_str(),
                    RefreshOutcome::Refused.as_str(),
                ],
            ),
            fetches: counter_vec(
                r,
                "wschat_jwks_fetches_total",
                "Reads of auth.jwt.jwks_url, by outcome (on failure the keys read last stay in use).",
                "outcome",
                &["success", "failure"],
            ),
            jwks_keys: gauge(
                r,
                "wschat_jwks_keys",
                "Verification keys in use from auth.jwt.jwks_url.",
            ),
            jwks_last_success: gauge(
                r,
                "wschat_jwks_last_success_timestamp_seconds",
                "When auth.jwt.jwks_url was last read successfully (Unix time; 0: never).",
            ),
        }
    }

    /// Counts a token refused as a JWT.
    pub fn failure(&self, reason: JwtFailure) {
        self.failures.with_label_values(&[reason.as_str()]).inc();
    }

    /// Counts a client's `refresh`.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        self.refreshes.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Counts a read of the JWKS URL.
    pub fn fetch(&self, ok: bool) {
        self.fetches
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
    }
}
