//! Every server event's JSON, built here and nowhere else.
//!
//! Events are encoded once and the bytes are shared: a message is serialized
//! when it is accepted and the same JSON is stored in history, carried through
//! Redis and sent to every member. A message's JSON is written in two parts,
//! the fields known before the broker assigns `seq` ([`MessageHead`]) and the
//! `seq` itself, so the Redis script can finish it without re-encoding; the
//! test at the bottom pins the format against serde's output.

use serde::Serialize;

use super::{ErrorCode, Message};

/// A message's JSON up to and including `"seq":`; [`MessageHead::finish`]
/// appends the number and the closing brace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHead(String);

impl MessageHead {
    /// Encodes every field of a new message but its `seq`, stamped now,
    /// with a fresh id.
    pub fn new(room: &str, from: &str, text: &str) -> MessageHead {
        MessageHead::with(
            &uuid::Uuid::new_v4().to_string(),
            room,
            from,
            text,
            &super::now_rfc3339(),
        )
    }

    fn with(id: &str, room: &str, from: &str, text: &str, sent_at: &str) -> MessageHead {
        let mut out = String::with_capacity(96 + room.len() + from.len() + text.len());
        for (i, (key, value)) in [
            ("id", id),
            ("room", room),
            ("from", from),
            ("text", text),
            ("sentAt", sent_at),
        ]
        .into_iter()
        .enumerate()
        {
            out.push(if i == 0 { '{' } else { ',' });
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
            out.push_str(&json_string(value));
        }
        out.push_str(",\"seq\":");
        MessageHead(out)
    }

    /// The JSON up to `"seq":`, for a broker that appends the seq itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The complete message JSON with its `seq`.
    pub fn finish(&self, seq: u64) -> String {
        format!("{}{seq}}}", self.0)
    }
}

/// `{"type":"message","message":<json>}` from an already encoded message.
pub fn message(message_json: &str) -> Vec<u8> {
    let mut event = Vec::with_capacity(message_json.len() + 32);
    event.extend_from_slice(br#"{"type":"message","message":"#);
    event.extend_from_slice(message_json.as_bytes());
    event.push(b'}');
    event
}

/// The `system` event sent first on every connection.
pub fn system(name: &str, client_id: &str) -> Vec<u8> {
    json(&serde_json::json!({
        "type": "system",
        "message": format!("connected as {name}"),
        "clientId": client_id,
    }))
}

/// The `presence` event.
pub fn presence(text: &str, online: u64) -> Vec<u8> {
    json(&serde_json::json!({ "type": "presence", "message": text, "online": online }))
}

/// The `history` event, built from messages that are already encoded
/// (history is kept as JSON so a join costs no re-serialization).
pub fn history<'a>(messages: impl IntoIterator<Item = &'a str>, epoch: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(br#"{"type":"history","messages":["#);
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m.as_bytes());
    }
    out.extend_from_slice(br#"],"epoch":"#);
    out.extend_from_slice(json_string(epoch).as_bytes());
    out.push(b'}');
    out
}

/// The `error` event; its text never contains the client's input.
pub fn error(code: ErrorCode, max_chars: usize) -> Vec<u8> {
    json(&serde_json::json!({
        "type": "error",
        "code": code.as_str(),
        "message": code.text(max_chars),
    }))
}

fn json_string(s: &str) -> String {
    // A &str always serializes.
    serde_json::to_string(s).unwrap_or_default()
}

fn json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serializing plain maps and strings cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Decodes a message encoded here (tests and tools).
pub fn parse_message(json: &str) -> Option<Message> {
    serde_json::from_str(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_pinned() {
        let head = MessageHead::with(
            "id-1",
            "lobby",
            "ana",
            "say \"hi\"\n</script>",
            "2026-01-01T00:00:00.000Z",
        );
        assert_eq!(
            head.finish(42),
            r#"{"id":"id-1","room":"lobby","from":"ana","text":"say \"hi\"\n</script>","sentAt":"2026-01-01T00:00:00.000Z","seq":42}"#
        );
        assert!(head.as_str().ends_with(r#""seq":"#));
        assert_eq!(
            String::from_utf8(message(&head.finish(1))).unwrap(),
            format!(r#"{{"type":"message","message":{}}}"#, head.finish(1))
        );
        assert_eq!(
            String::from_utf8(system("ana", "c1")).unwrap(),
            r#"{"clientId":"c1","message":"connected as ana","type":"system"}"#
        );
        assert_eq!(
            String::from_utf8(presence("ana joined", 3)).unwrap(),
            r#"{"message":"ana joined","online":3,"type":"presence"}"#
        );
        assert_eq!(
            String::from_utf8(history([r#"{"a":1}"#, r#"{"b":2}"#], "ep")).unwrap(),
            r#"{"type":"history","messages":[{"a":1},{"b":2}],"epoch":"ep"}"#
        );
        assert_eq!(
            String::from_utf8(error(ErrorCode::TooLarge, 500)).unwrap(),
            r#"{"code":"too_large","message":"Message must be 500 characters or less.","type":"error"}"#
        );
    }

    #[test]
    fn message_json_matches_the_wire_type() {
        // Any field order or escaping difference from the `Message` type
        // (what clients and tests decode) fails here, not at run time.
        let head = MessageHead::new("r", "b\u{7}ob", "tab\tand \u{2028} 한국");
        let json = head.finish(u64::MAX);
        let m = parse_message(&json).expect("decodes");
        assert_eq!((m.room.as_str(), m.from.as_str()), ("r", "b\u{7}ob"));
        assert_eq!(m.text, "tab\tand \u{2028} 한국");
        assert_eq!(m.seq, u64::MAX);
        assert_eq!(serde_json::to_string(&m).unwrap(), json);
    }
}
