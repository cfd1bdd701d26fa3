//! The edge's metrics: connections before the upgrade, what closed them,
//! where each upgrade request's client address came from, and why an
//! upgrade was refused.

use prometheus::{IntCounterVec, IntGauge, Registry};

use super::{counter_vec, gauge};

/// Why an upgrade was refused (the `reason` label of
/// `wschat_upgrade_rejections_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    NotFound,
    BadRequest,
    Origin,
    Token,
    /// Too many failed token checks from this IP: the token was not checked.
    AuthFailures,
    IpRate,
    IpCap,
    /// The identified user holds `limits.user_max_connections` already.
    UserCap,
    Capacity,
    Draining,
}

impl RejectReason {
    const ALL: [RejectReason; 10] = [
        RejectReason::NotFound,
        RejectReason::BadRequest,
        RejectReason::Origin,
        RejectReason::Token,
        RejectReason::AuthFailures,
        RejectReason::IpRate,
        RejectReason::IpCap,
        RejectReason::UserCap,
        RejectReason::Capacity,
        RejectReason::Draining,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NotFound => "not_found",
            RejectReason::BadRequest => "bad_request",
            RejectReason::Origin => "origin",
            RejectReason::Token => "token",
            RejectReason::AuthFailures => "auth_failures",
            RejectReason::IpRate => "ip_rate",
            RejectReason::IpCap => "ip_cap",
            RejectReason::UserCap => "user_cap",
            RejectReason::Capacity => "capacity",
            RejectReason::Draining => "draining",
        }
    }
}

/// Why an HTTP connection was closed before any upgrade (the `reason` label
/// of `wschat_http_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRefusal {
    /// The client address holds `server.ip_max_http_connections` already: closed at accept.
    IpCap,
    /// The listener holds `server.max_http_connections` already: closed at accept.
    Capacity,
    /// A request head over `server.max_header_bytes`: answered 431, closed.
    HeaderTooLarge,
}

impl HttpRefusal {
    const ALL: [HttpRefusal; 3] = [
        HttpRefusal::IpCap,
        HttpRefusal::Capacity,
        HttpRefusal::HeaderTooLarge,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpRefusal::IpCap => "ip_cap",
            HttpRefusal::Capacity => "capacity",
            HttpRefusal::HeaderTooLarge => "header_too_large",
        }
    }
}

/// Where an upgrade request's client address came from (the `source` label
/// of `wschat_client_address_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSource {
    /// The socket peer, which is not a trusted proxy.
    Peer,
    /// A trusted proxy and no untrusted hop (no `X-Forwarded-For`, or every
    /// entry a trusted proxy): the leftmost trusted hop.
    Proxy,
    /// The rightmost untrusted `X-Forwarded-For` entry.
    Forwarded,
    /// A malformed entry where the client should be: the trusted hop that
    /// forwarded it stands in, so it shares that hop's limits.
    Malformed,
}

impl AddressSource {
    const ALL: [AddressSource; 4] = [
        AddressSource::Peer,
        AddressSource::Proxy,
        AddressSource::Forwarded,
        AddressSource::Malformed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressSource::Peer => "peer",
            AddressSource::Proxy => "proxy",
            AddressSource::Forwarded => "forwarded",
            AddressSource::Malformed => "malformed",
        }
    }
}

/// The edge's metric handles.
pub struct EdgeMetrics {
    /// Public connections that have not upgraded, open now.
    pub http_connections: IntGauge,
    rejections: IntCounterVec,
    http_refused: IntCounterVec,
    client_address: IntCounterVec,
}

impl EdgeMetrics {
    pub(super) fn new(r: &Registry) -> EdgeMetrics {
        EdgeMetrics {
            http_connections: gauge(
                r,
                "wschat_http_connections",
                "Public HTTP connections open now that have not upgraded.",
            ),
            rejections: counter_vec(
                r,
                "wschat_upgrade_rejections_total",
                "Upgrade requests refused before the upgrade, by reason.",
                "reason",
                &RejectReason::ALL.map(RejectReason::as_str),
            ),
            http_refused: counter_vec(
                r,
                "wschat_http_refused_total",
                "HTTP connections closed by a limit before any upgrade, by reason.",
                "reason",
                &HttpRefusal::ALL.map(HttpRefusal::as_str),
            ),
            client_address: counter_vec(
                r,
                "wschat_client_address_total",
                "Upgrade requests by where their client address came from.",
                "source",
                &AddressSource::ALL.map(AddressSource::as_str),
            ),
        }
    }

    /// Counts an upgrade rejection.
    pub fn rejected_upgrade(&self, reason: RejectReason) {
        self.rejections.with_label_values(&[reason.as_str()]).inc();
    }

    /// Upgrade requests refused so far, all reasons together.
    pub fn rejected_upgrades(&self) -> u64 {
        let count = |r: RejectReason| self.rejections.with_label_values(&[r.as_str()]).get();
        RejectReason::ALL.into_iter().map(count).sum()
    }

    /// Counts an HTTP connection closed by a limit before any upgrade.
    pub fn http_refused(&self, reason: HttpRefusal) {
        self.http_refused
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Counts where an upgrade request's client address came from.
    pub fn client_address(&self, source: AddressSource) {
        self.client_address
            .with_label_values(&[source.as_str()])
            .inc();
    }
}
