//! The edge's metrics: where each upgrade request's client address came from.

use prometheus::{IntCounterVec, Registry};

use super::counter_vec;

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
    client_address: IntCounterVec,
}

impl EdgeMetrics {
    pub(super) fn new(r: &Registry) -> EdgeMetrics {
        EdgeMetrics {
            client_address: counter_vec(
                r,
                "wschat_client_address_total",
                "Upgrade requests by where their client address came from.",
                "source",
                &AddressSource::ALL.map(AddressSource::as_str),
            ),
        }
    }

    /// Counts where an upgrade request's client address came from.
    pub fn client_address(&self, source: AddressSource) {
        self.client_address
            .with_label_values(&[source.as_str()])
            .inc();
    }
}
