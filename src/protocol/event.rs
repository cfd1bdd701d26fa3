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
    /// with a fresh id. `user` is the identified sender's id (none for a
    /// guest: then the JSON is exactly version 1's).
    pub fn new(room: &str, from: &str, user: Option<&str>, text: &str) -> MessageHead {
        MessageHead::with(
            &uuid::Uuid::new_v4().to_string(),
            room,
            from,
            user,
            text,
            &super::now_rfc3339(),
        )
    }

    /// The message's id (its first field).
    pub fn id(&self) -> &str {
        // `{"id":"<uuid>",…`: a UUID needs no escaping.
        (self.0.strip_prefix(r#"{"id":""#))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
    }

    fn with(
        id: &str,
        room: &str,
        from: &str,
        user: Option<&str>,
        text: &str,
        sent_at: &str,
    ) -> MessageHead {
        let extra = user.map_or(0, |u| u.len() + 10);
        let mut out = String::with_capacity(96 + room.len() + from.len() + text.len() + extra);
        for (i, (key, value)) in [
            ("id", Some(id)),
            ("room", Some(room)),
            ("from", Some(from)),
            ("user", user),
            ("text", Some(text)),
            ("sentAt", Some(sent_at)),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
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

/// Who a connection is, for its `system` event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity<'a> {
    /// The identified user; `None` for a guest.
    pub user: Option<&'a str>,
    /// When its token expires (JWTs); `None` for static tokens.
    pub expires: Option<std::time::SystemTime>,
}

/// The `system` event sent first on every connection. An identified user's
/// also carries `user`, `name` and (for a JWT) `expiresAt`; a guest's is
/// exactly version 1's.
pub fn system(name: &str, client_id: &str, who: Identity<'_>) -> Vec<u8> {
    let mut event = serde_json::json!({
        "type": "system",
        "message": format!("connected as {name}"),
        "clientId": client_id,
    });
    if let Some(user) = who.user {
        event["user"] = user.into();
        event["name"] = name.into();
    }
    if let Some(at) = who.expires {
        event["expiresAt"] = super::rfc3339(at).into();
    }
    json(&event)
}

/// The `presence` event of `room`.
pub fn presence(room: &str, text: &str, online: u64) -> Vec<u8> {
    json(
        &serde_json::json!({ "type": "presence", "room": room, "message": text, "online": online }),
    )
}

/// The `history` event of `room`, built from messages that are already
/// encoded (history is kept as JSON so a join costs no re-serialization).
pub fn history<'a>(
    room: &str,
    messages: impl IntoIterator<Item = &'a str>,
    epoch: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(br#"{"type":"history","room":"#);
    out.extend_from_slice(json_string(room).as_bytes());
    out.extend_from_slice(br#","messages":["#);
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

/// `members`: who is in `room` (the answer to `who`): the online count,
/// guests included, and identified users as `(user, name)`.
pub fn members<'a>(
    room: &str,
    online: u64,
    users: impl IntoIterator<Item = (&'a str, &'a str)>,
    truncated: bool,
) -> Vec<u8> {
    let members: Vec<_> = users
        .into_iter()
        .map(|(user, name)| serde_json::json!({ "user": user, "name": name }))
        .collect();
    json(&serde_json::json!({
        "type": "members",
        "room": room,
        "online": online,
        "members": members,
        "truncated": truncated,
    }))
}

/// `expiring`: the connection's token expires at `at` (sent
/// `auth.expiry_warning` before it).
pub fn expiring(at: std::time::SystemTime) -> Vec<u8> {
    json(&serde_json::json!({ "type": "expiring", "expiresAt": super::rfc3339(at) }))
}

/// `refreshed`: a `refresh` was accepted; the connection now ends at `at`
/// (`expiresAt` is absent for a token that does not expire).
pub fn refreshed(at: Option<std::time::SystemTime>) -> Vec<u8> {
    let mut event = serde_json::json!({ "type": "refreshed" });
    if let Some(at) = at {
        event["expiresAt"] = super::rfc3339(at).into();
    }
    json(&event)
}

/// Why a connection left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftReason {
    /// It asked to (`leave`).
    Leave,
    /// Its token no longer allows the room.
    Forbidden,
    /// A moderator or the server API removed it.
    Kicked,
}

/// `left`: the connection is no longer in `room`.
pub fn left(room: &str, reason: LeftReason) -> Vec<u8> {
    let reason = match reason {
        LeftReason::Leave => "leave",
        LeftReason::Forbidden => "forbidden",
        LeftReason::Kicked => "kicked",
    };
    json(&serde_json::json!({ "type": "left", "room": room, "reason": reason }))
}

/// `deleted`: message `id` (number `seq`) left `room`'s history.
pub fn deleted(room: &str, id: &str, seq: u64) -> Vec<u8> {
    json(&serde_json::json!({ "type": "deleted", "room": room, "id": id, "seq": seq }))
}

/// The `error` event, with the `room` of the room action it answers; its
/// text never contains the client's input.
pub fn error(room: Option<&str>, code: ErrorCode, max_chars: usize) -> Vec<u8> {
    let mut event = serde_json::json!({
        "type": "error",
        "code": code.as_str(),
        "message": code.text(max_chars),
    });
    if let Some(room) = room {
        event["room"] = room.into();
    }
    json(&event)
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
            None,
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
        let identified = MessageHead::with("id-2", "r", "Ana", Some("u-1"), "hi", "t");
        assert_eq!(
            identified.finish(7),
            r#"{"id":"id-2","room":"r","from":"Ana","user":"u-1","text":"hi","sentAt":"t","seq":7}"#
        );
        assert_eq!(
            String::from_utf8(system("ana", "c1", Identity::default())).unwrap(),
            r#"{"clientId":"c1","message":"connected as ana","type":"system"}"#
        );
        let who = Identity {
            user: Some("u-1"),
            expires: Some(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
            ),
        };
        assert_eq!(
            String::from_utf8(system("Ana", "c1", who)).unwrap(),
            r#"{"clientId":"c1","expiresAt":"2023-11-14T22:13:20.123Z","message":"connected as Ana","name":"Ana","type":"system","user":"u-1"}"#
        );
        assert_eq!(
            String::from_utf8(presence("r", "ana joined", 3)).unwrap(),
            r#"{"message":"ana joined","online":3,"room":"r","type":"presence"}"#
        );
        assert_eq!(
            String::from_utf8(members("r", 3, [("u1", "Ana")], false)).unwrap(),
            r#"{"members":[{"name":"Ana","user":"u1"}],"online":3,"room":"r","truncated":false,"type":"members"}"#
        );
        assert_eq!(
            String::from_utf8(history("r", [r#"{"a":1}"#, r#"{"b":2}"#], "ep")).unwrap(),
            r#"{"type":"history","room":"r","messages":[{"a":1},{"b":2}],"epoch":"ep"}"#
        );
        assert_eq!(
            String::from_utf8(error(None, ErrorCode::TooLarge, 500)).unwrap(),
            r#"{"code":"too_large","message":"Message must be 500 characters or less.","type":"error"}"#
        );
    }

    #[test]
    fn message_json_matches_the_wire_type() {
        // Any field order or escaping difference from the `Message` type
        // (what clients and tests decode) fails here, not at run time.
        for user in [None, Some("u\"1\u{1}")] {
            let head = MessageHead::new("r", "b\u{7}ob", user, "tab\tand \u{2028} 한국");
            let json = head.finish(u64::MAX);
            let m = parse_message(&json).expect("decodes");
            assert_eq!((m.room.as_str(), m.from.as_str()), ("r", "b\u{7}ob"));
            assert_eq!(m.user.as_deref(), user);
            assert_eq!(m.text, "tab\tand \u{2028} 한국");
            assert_eq!(m.seq, u64::MAX);
            assert_eq!(serde_json::to_string(&m).unwrap(), json);
        }
    }
}
