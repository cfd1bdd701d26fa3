//! The wire text: reading the server's events without a JSON parser (the
//! event type, the send time a publisher wrote into a message, an error's
//! code), and writing a publisher's messages.

use crate::conn::Role;

/// The string value after the first `key` (e.g. `"type":"`). Text inside a
/// message is JSON-escaped, so it cannot contain such a key unescaped.
fn value_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let rest = &text[text.find(key)? + key.len()..];
    rest.find('"').map(|end| &rest[..end])
}

/// The event type: the value of the first `"type":"..."` in the frame.
pub fn event_type(text: &str) -> &str {
    value_after(text, "\"type\":\"").unwrap_or("")
}

/// The send time a publisher put into `lg|<conn>|<seq>|<µs>`.
pub fn stamp_us(text: &str) -> Option<u64> {
    const KEY: &str = "\"text\":\"lg|";
    let rest = &text[text.find(KEY)? + KEY.len()..];
    let body = &rest[..rest.find('"')?];
    body.rsplit('|').next()?.parse().ok()
}

pub fn error_code(text: &str) -> &str {
    value_after(text, "\"code\":\"").unwrap_or("unknown")
}

/// A publisher's message `seq`: `lg|<conn>|<seq>|<µs>`, into the room of the
/// query string (no `room`, version 1) or round-robin over all its rooms.
pub fn write_message(text: &mut String, role: &Role, seq: u64, now: u64) {
    use std::fmt::Write;
    text.clear();
    let (i, stamp) = (role.index, now);
    if role.joins.is_empty() {
        let _ = write!(
            text,
            r#"{{"type":"message","text":"lg|{i}|{seq}|{stamp}"}}"#
        );
        return;
    }
    // Starting at the connection's index spreads the first messages over rooms.
    let k = (seq as usize + i) % (role.joins.len() + 1);
    let room = if k == 0 {
        &role.room
    } else {
        &role.joins[k - 1]
    };
    let _ = write!(
        text,
        r#"{{"type":"message","room":"{room}","text":"lg|{i}|{seq}|{stamp}"}}"#
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events() {
        let m = r#"{"type":"message","message":{"id":"x","room":"r","from":"a","text":"lg|3|7|123456","sentAt":"t","seq":1}}"#;
        assert_eq!(event_type(m), "message");
        assert_eq!(stamp_us(m), Some(123_456));
        let raw = r#"{"type":"message","text":"lg|3|7|99"}"#;
        assert_eq!(stamp_us(raw), Some(99));
        let v2 = r#"{"type":"message","room":"bench-4","text":"lg|3|7|98"}"#;
        assert_eq!(stamp_us(v2), Some(98));
        assert_eq!(event_type(r#"{"type":"presence","online":3}"#), "presence");
        let h = r#"{"type":"history","room":"bench-4","messages":[],"epoch":"e"}"#;
        assert_eq!(event_type(h), "history");
        let e = r#"{"type":"error","code":"rate_limited","message":"slow"}"#;
        assert_eq!(error_code(e), "rate_limited");
        assert_eq!(event_type("not json"), "");
        assert_eq!(stamp_us(r#"{"type":"message","text":"hello"}"#), None);
    }

    #[test]
    fn publishers_write_round_robin_over_their_rooms() {
        let mut role = Role {
            index: 1,
            room: "a".into(),
            joins: Vec::new(),
            publish: None,
        };
        let mut text = String::new();
        write_message(&mut text, &role, 5, 42);
        assert_eq!(text, r#"{"type":"message","text":"lg|1|5|42"}"#);
        role.joins = vec!["b".into(), "c".into()];
        let rooms: Vec<String> = (1..=4)
            .map(|seq| {
                write_message(&mut text, &role, seq, 7);
                assert_eq!(stamp_us(&text), Some(7));
                value_after(&text, "\"room\":\"").unwrap_or("").to_string()
            })
            .collect();
        assert_eq!(rooms, ["c", "a", "b", "c"]);
    }
}
