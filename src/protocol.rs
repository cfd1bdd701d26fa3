//! Wire types of protocol version 1, input cleaning, and client error codes.
//!
//! Server events are serialized here once; the session and the rooms only
//! ever move the resulting bytes.

use serde::{Deserialize, Serialize};

/// A chat message as stored in history and sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub room: String,
    pub from: String,
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
}

impl ErrorCode {
    /// Every code, for metric label pre-registration.
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::RateLimited,
        ErrorCode::TooLarge,
        ErrorCode::BadJson,
        ErrorCode::BadType,
        ErrorCode::Empty,
        ErrorCode::Forbidden,
        ErrorCode::Unavailable,
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
            ErrorCode::Forbidden => "This token may not send messages in this room.".into(),
            ErrorCode::Unavailable => {
                "The message could not be accepted right now; send it again.".into()
            }
        }
    }

    /// The serialized `error` event.
    pub fn event(self, max_chars: usize) -> Vec<u8> {
        json(&serde_json::json!({
            "type": "error",
            "code": self.as_str(),
            "message": self.text(max_chars),
        }))
    }
}

/// The `system` event sent first on every connection.
pub fn system_event(name: &str, client_id: &str) -> Vec<u8> {
    json(&serde_json::json!({
        "type": "system",
        "message": format!("connected as {name}"),
        "clientId": client_id,
    }))
}

/// The `presence` event.
pub fn presence_event(text: &str, online: u64) -> Vec<u8> {
    json(&serde_json::json!({ "type": "presence", "message": text, "online": online }))
}

/// The `history` event, built from messages that are already serialized
/// (history is kept as JSON so a join costs no re-serialization).
pub fn history_event<'a>(messages: impl IntoIterator<Item = &'a str>, epoch: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(br#"{"type":"history","messages":["#);
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m.as_bytes());
    }
    out.extend_from_slice(br#"],"epoch":"#);
    out.extend_from_slice(&json(&epoch));
    out.push(b'}');
    out
}

fn json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serializing plain maps and strings cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The message a client sent, after parsing and cleaning.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A chat message with its text trimmed (possibly empty).
    Message { text: String },
}

/// Parses one client text message. Size and emptiness are checked later, by
/// the caller, so that the order of checks matches the reference server.
pub fn parse_client_event(raw: &str) -> Result<ClientEvent, ErrorCode> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| ErrorCode::BadJson)?;
    let serde_json::Value::Object(map) = value else {
        return Err(ErrorCode::BadType);
    };
    if map.get("type").and_then(|t| t.as_str()) != Some("message") {
        return Err(ErrorCode::BadType);
    }
    // The reference did `String(event.text ?? "")`: numbers and booleans
    // become their text, a missing text is empty.
    let text = match map.get("text") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.trim().to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        Some(_) => return Err(ErrorCode::BadJson),
    };
    Ok(ClientEvent::Message { text })
}

/// Display name: trimmed, cut to 24 characters, `^[\w -]+$` or `guest`.
pub fn clean_name(raw: Option<&str>) -> String {
    clean(raw, 24, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == ' ' || c == '-'
    })
    .unwrap_or_else(|| "guest".into())
}

/// Room id: trimmed, cut to 32 characters, `^[a-zA-Z0-9_-]+$` or `lobby`.
pub fn clean_room(raw: Option<&str>) -> String {
    clean(raw, 32, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == '-'
    })
    .unwrap_or_else(|| "lobby".into())
}

fn clean(raw: Option<&str>, max: usize, allowed: fn(char) -> bool) -> Option<String> {
    let cut: String = raw?.trim().chars().take(max).collect();
    (!cut.is_empty() && cut.chars().all(allowed)).then_some(cut)
}

/// Current time as RFC 3339 UTC with milliseconds, like JavaScript's
/// `toISOString()`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rooms_are_cleaned_like_the_reference() {
        assert_eq!(clean_name(None), "guest");
        assert_eq!(clean_name(Some("  ana  ")), "ana");
        assert_eq!(clean_name(Some("<script>")), "guest");
        assert_eq!(clean_name(Some("a".repeat(30).as_str())), "a".repeat(24));
        assert_eq!(clean_name(Some("한국")), "guest");
        assert_eq!(clean_room(Some("ops-1_a")), "ops-1_a");
        assert_eq!(clean_room(Some("a b")), "lobby");
        assert_eq!(clean_room(Some("")), "lobby");
        assert_eq!(clean_room(Some("r".repeat(40).as_str())).len(), 32);
    }

    #[test]
    fn client_events_parse_with_reference_error_codes() {
        assert_eq!(
            parse_client_event(r#"{"type":"message","text":" hi "}"#),
            Ok(ClientEvent::Message { text: "hi".into() })
        );
        assert_eq!(parse_client_event("nope"), Err(ErrorCode::BadJson));
        assert_eq!(
            parse_client_event(r#"{"type":"join"}"#),
            Err(ErrorCode::BadType)
        );
        assert_eq!(parse_client_event("[1]"), Err(ErrorCode::BadType));
        assert_eq!(parse_client_event("null"), Err(ErrorCode::BadType));
        assert_eq!(
            parse_client_event(r#"{"type":"message","text":7}"#),
            Ok(ClientEvent::Message { text: "7".into() })
        );
        assert_eq!(
            parse_client_event(r#"{"type":"message"}"#),
            Ok(ClientEvent::Message {
                text: String::new()
            })
        );
    }

    #[test]
    fn error_events_never_echo_input() {
        let e = String::from_utf8(ErrorCode::TooLarge.event(500)).unwrap();
        assert_eq!(
            e,
            r#"{"code":"too_large","message":"Message must be 500 characters or less.","type":"error"}"#
        );
    }

    #[test]
    fn history_event_is_valid_json() {
        let h = history_event([r#"{"a":1}"#, r#"{"b":2}"#], "ep");
        let v: serde_json::Value = serde_json::from_slice(&h).unwrap();
        assert_eq!(v["messages"][1]["b"], 2);
        assert_eq!(v["epoch"], "ep");
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z'));
    }
}
