//! The words of the wire protocol: the message type, client error codes,
//! close codes ([`close`]), server events ([`event`]) and what clients send
//! ([`client`]). Plain data and encoding only: this layer imports nothing
//! else of the crate.

pub mod client;
pub mod close;
pub mod event;

pub use client::{
    clean_name, clean_room, is_deceptive, parse_client_event, strip_deceptive, valid_room,
    ClientEvent,
};

use serde::{Deserialize, Serialize};

/// A chat message as stored in history and sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub room: String,
    pub from: String,
    /// The sender's user id when identified (JWT `sub`, a named static
    /// token's `user`); absent for guests, as in version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub text: String,
    pub sent_at: String,
    pub seq: u64,
}

/// The error codes a client can receive in an `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    RateLimited,
    TooLarge,
    BadJson,
    BadType,
    Empty,
    Forbidden,
    Unavailable,
    /// A `refresh` whose token was refused; the connection keeps its old one.
    BadToken,
    /// A `join` past `limits.max_rooms_per_connection`.
    TooManyRooms,
    /// A `join` of a room the connection is already in.
    AlreadyJoined,
    /// A `leave` or `message` for a room the connection is not in.
    NotJoined,
    /// A `room` that is not a valid room name.
    BadRoom,
    /// A `delete` of a message that is not in the room's history.
    NotFound,
    /// A `join` of a room at its namespace's `max_members`.
    RoomFull,
}

impl ErrorCode {
    /// Every code, for metric label pre-registration.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::RateLimited,
        ErrorCode::TooLarge,
        ErrorCode::BadJson,
        ErrorCode::BadType,
        ErrorCode::Empty,
        ErrorCode::Forbidden,
        ErrorCode::Unavailable,
        ErrorCode::BadToken,
        ErrorCode::TooManyRooms,
        ErrorCode::AlreadyJoined,
        ErrorCode::NotJoined,
        ErrorCode::BadRoom,
        ErrorCode::NotFound,
        ErrorCode::RoomFull,
    ];

    /// The code on the wire (also the metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadType => "bad_type",
            ErrorCode::Empty => "empty",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::BadRoom => "bad_room",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RoomFull => "room_full",
        }
    }

    /// Human text; never contains the client's input.
    fn text(self, max_chars: usize) -> String {
        match self {
            ErrorCode::RateLimited => "Too many messages. Wait a moment.".into(),
            ErrorCode::TooLarge => format!("Message must be {max_chars} characters or less."),
            ErrorCode::BadJson => {
                "Send JSON such as {\"type\":\"message\",\"text\":\"hi\"}.".into()
            }
            ErrorCode::BadType => "Only message events are accepted.".into(),
            ErrorCode::Empty => "Message text is required.".into(),
            ErrorCode::Forbidden => "This token does not allow that in this room.".into(),
            ErrorCode::Unavailable => {
                "The message could not be accepted right now; send it again.".into()
            }
            ErrorCode::BadToken => "The new token was not accepted (invalid, expired, or for \
                                    another user); this session still ends when its current \
                                    token expires."
                .into(),
            ErrorCode::TooManyRooms => {
                "This connection is in as many rooms as it may be; leave one first.".into()
            }
            ErrorCode::AlreadyJoined => "This connection is already in that room.".into(),
            ErrorCode::NotJoined => "This connection is not in that room; join it first.".into(),
            ErrorCode::BadRoom => "A room name is 1 to 32 letters, digits, '-' or '_'.".into(),
            ErrorCode::NotFound => "No such message in this room's history.".into(),
            ErrorCode::RoomFull => "This room is full; try again later.".into(),
        }
    }
}

/// Current time as RFC 3339 UTC with milliseconds, like JavaScript's
/// `toISOString()`.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// A time as RFC 3339 UTC with milliseconds.
pub fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z'));
    }
}
