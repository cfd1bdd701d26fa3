//! The close codes ws-chat sends, with their reasons and reconnect rules.
//!
//! One catalogue, so the page, the docs and the metrics agree. Codes a client
//! sends are never recorded as labels (unbounded cardinality).

/// A close the server initiates or answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the client closed, or a normal end. Do not reconnect.
    Normal,
    /// 1001: the server is draining for shutdown. Reconnect with backoff.
    GoingAway,
    /// 1002: the client broke RFC 6455. Fix the client.
    Protocol,
    /// 1003: binary frames are not accepted. Fix the client.
    Unsupported,
    /// 1007: a text message or close reason was not UTF-8. Fix the client.
    InvalidPayload,
    /// 1008: the token was revoked or no longer allows this room. Do not reconnect.
    Policy,
    /// 1009: a message was larger than the limit. Fix the client.
    TooBig,
    /// 1011: the server failed. Reconnect with backoff.
    Internal,
    /// 1013: the client could not keep up (or the server is overloaded).
    /// Reconnect with backoff and `since` to recover what was missed.
    TryAgainLater,
    /// 4001: the connection's token (a JWT) expired. Get a new token, then
    /// reconnect with `since`.
    TokenExpired,
    /// 4003: disconnected by a moderator or the server API. Do not reconnect
    /// automatically.
    Disconnected,
}

impl CloseCode {
    /// Every code, for metric label pre-registration.
    pub const ALL: [CloseCode; 11] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::Protocol,
        CloseCode::Unsupported,
        CloseCode::InvalidPayload,
        CloseCode::Policy,
        CloseCode::TooBig,
        CloseCode::Internal,
        CloseCode::TryAgainLater,
        CloseCode::TokenExpired,
        CloseCode::Disconnected,
    ];

    /// The numeric code on the wire.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Internal => 1011,
            CloseCode::TryAgainLater => 1013,
            CloseCode::TokenExpired => 4001,
            CloseCode::Disconnected => 4003,
        }
    }

    /// The reason sent with the code (short, fixed, never client input).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "bye",
            CloseCode::GoingAway => "going away",
            CloseCode::Protocol => "protocol error",
            CloseCode::Unsupported => "text messages only",
            CloseCode::InvalidPayload => "invalid utf-8",
            CloseCode::Policy => "token revoked",
            CloseCode::TooBig => "message too big",
            CloseCode::Internal => "internal error",
            CloseCode::TryAgainLater => "too slow, reconnect",
            CloseCode::TokenExpired => "token expired",
            CloseCode::Disconnected => "disconnected",
        }
    }

    /// The metric label: the code as text.
    pub fn label(self) -> &'static str {
        match self {
            CloseCode::Normal => "1000",
            CloseCode::GoingAway => "1001",
            CloseCode::Protocol => "1002",
            CloseCode::Unsupported => "1003",
            CloseCode::InvalidPayload => "1007",
            CloseCode::Policy => "1008",
            CloseCode::TooBig => "1009",
            CloseCode::Internal => "1011",
            CloseCode::TryAgainLater => "1013",
            CloseCode::TokenExpired => "4001",
            CloseCode::Disconnected => "4003",
        }
    }
}

/// The label for connections that ended without a close handshake.
pub const ABNORMAL_LABEL: &str = "abnormal";

/// Whether a close code received from a client is one RFC 6455 §7.4 allows
/// on the wire.
pub fn is_valid_peer_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_reasons_fit_a_control_frame() {
        for c in CloseCode::ALL {
            assert_eq!(c.label(), c.code().to_string());
            assert!(c.reason().len() <= 123);
        }
    }

    #[test]
    fn reserved_peer_codes_are_invalid() {
        for bad in [0, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000] {
            assert!(!is_valid_peer_code(bad), "{bad}");
        }
        for good in [1000, 1001, 1008, 1011, 3000, 4999] {
            assert!(is_valid_peer_code(good), "{good}");
        }
    }
}
