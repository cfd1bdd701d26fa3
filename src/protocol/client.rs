//! What clients send: parsing a client event, and cleaning the name and
//! room a client asks for. Characters that could make a text or a name look
//! like something else (controls, bidirectional overrides) are removed first.

use std::borrow::Cow;

use super::ErrorCode;

/// The message a client sent, after parsing and cleaning.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A chat message with its text trimmed (possibly empty), for `room`
    /// (version 2) or the room of the query string.
    Message { room: Option<String>, text: String },
    /// Join `room`, resuming after `since` (version 2, §9).
    Join { room: String, since: Since },
    /// Leave `room` (version 2, §9).
    Leave { room: String },
    /// Delete message `id` of `room` (version 2, §10).
    Delete { room: String, id: String },
    /// A new token for the connection's user (version 2, §8).
    Refresh { token: String },
    /// Who is in `room` (version 2, §10).
    Who { room: String },
}

/// Where a `join` resumes: the last `seq` seen, and its history's epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Since {
    /// The last `seq` it saw.
    pub seq: Option<u64>,
    /// The epoch that `seq` belongs to.
    pub epoch: Option<String>,
}

/// Parses one client text message. Size and emptiness are checked later, by
/// the caller, so that the order of checks matches the reference server.
pub fn parse_client_event(raw: &str) -> Result<ClientEvent, ErrorCode> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| ErrorCode::BadJson)?;
    let serde_json::Value::Object(map) = value else {
        return Err(ErrorCode::BadType);
    };
    // A version 2 `room` must be a valid name as given: cleaning it into
    // another room (as the query string's is) would act on the wrong room.
    let room = match map.get("room") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(r)) if valid_room(r) => Some(r.clone()),
        Some(_) => return Err(ErrorCode::BadRoom),
    };
    match map.get("type").and_then(|t| t.as_str()) {
        Some("message") => {}
        Some("join") => {
            let since = Since {
                seq: map.get("since").and_then(serde_json::Value::as_u64),
                epoch: map
                    .get("epoch")
                    .and_then(|e| e.as_str())
                    .map(str::to_string),
            };
            let room = room.ok_or(ErrorCode::BadRoom)?;
            return Ok(ClientEvent::Join { room, since });
        }
        Some("leave") => {
            return Ok(ClientEvent::Leave {
                room: room.ok_or(ErrorCode::BadRoom)?,
            })
        }
        Some("delete") => {
            let room = room.ok_or(ErrorCode::BadRoom)?;
            // Message ids are UUIDs: anything else cannot be in a history.
            return match map.get("id").and_then(|i| i.as_str()) {
                Some(id) if id.len() == 36 && uuid::Uuid::try_parse(id).is_ok() => {
                    Ok(ClientEvent::Delete {
                        room,
                        id: id.to_string(),
                    })
                }
                _ => Err(ErrorCode::NotFound),
            };
        }
        Some("who") => {
            return Ok(ClientEvent::Who {
                room: room.ok_or(ErrorCode::BadRoom)?,
            })
        }
        Some("refresh") => {
            return match map.get("token") {
                Some(serde_json::Value::String(t)) if !t.is_empty() => {
                    Ok(ClientEvent::Refresh { token: t.clone() })
                }
                _ => Err(ErrorCode::BadToken),
            }
        }
        _ => return Err(ErrorCode::BadType),
    }
    // The reference did `String(event.text ?? "")`: numbers and booleans
    // become their text, a missing text is empty.
    let text = match map.get("text") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => strip_deceptive(s).trim().to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        Some(_) => return Err(ErrorCode::BadJson),
    };
    Ok(ClientEvent::Message { room, text })
}

/// Whether `room` is a room name exactly as given: 1 to 32 of
/// `[a-zA-Z0-9_-]`.
pub fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= 32
        && room
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `c` is removed from names and texts (PROTOCOL.md §13): a C0 or
/// C1 control character other than newline and tab (DEL included), or a
/// bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069), which
/// can reorder what follows it on screen.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{b}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// `text` without the characters of [`is_deceptive`]; borrowed when it has
/// none (the common case costs one scan).
pub fn strip_deceptive(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_deceptive) {
        Cow::Owned(text.chars().filter(|&c| !is_deceptive(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// Display name: deceptive characters removed, trimmed, cut to 24
/// characters, then `^[\w -]+$` or `guest`. (Reserved names are refused by
/// the caller, which knows the list: see `auth::ReservedNames`.)
pub fn clean_name(raw: Option<&str>) -> String {
    let stripped = raw.map(strip_deceptive);
    clean(stripped.as_deref(), 24, |c| {
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
    fn joins_and_leaves_name_a_valid_room() {
        assert_eq!(
            parse_client_event(r#"{"type":"join","room":"ops","since":12,"epoch":"e"}"#),
            Ok(ClientEvent::Join {
                room: "ops".into(),
                since: Since {
                    seq: Some(12),
                    epoch: Some("e".into())
                }
            })
        );
        assert_eq!(
            parse_client_event(r#"{"type":"message","room":"ops","text":"hi"}"#),
            Ok(ClientEvent::Message {
                room: Some("ops".into()),
                text: "hi".into()
            })
        );
        for raw in [
            r#"{"type":"join"}"#,
            r#"{"type":"join","room":"a b"}"#,
            r#"{"type":"leave","room":""}"#,
            r#"{"type":"who"}"#,
            r#"{"type":"message","room":7,"text":"x"}"#,
        ] {
            assert_eq!(parse_client_event(raw), Err(ErrorCode::BadRoom), "{raw}");
        }
        assert_eq!(
            parse_client_event(r#"{"type":"who","room":"ops"}"#),
            Ok(ClientEvent::Who { room: "ops".into() })
        );
        assert!(valid_room(&"r".repeat(32)) && !valid_room(&"r".repeat(33)));
    }

    #[test]
    fn a_delete_names_a_room_and_a_message_id() {
        let id = "0b6c4c2e-6a0e-4a8e-9d0e-3c4f8e7a1b2c";
        assert_eq!(
            parse_client_event(&format!(r#"{{"type":"delete","room":"r","id":"{id}"}}"#)),
            Ok(ClientEvent::Delete {
                room: "r".into(),
                id: id.into()
            })
        );
        for raw in [
            r#"{"type":"delete","room":"r"}"#,
            r#"{"type":"delete","room":"r","id":"\"},{\"x"}"#,
        ] {
            assert_eq!(parse_client_event(raw), Err(ErrorCode::NotFound), "{raw}");
        }
        let no_room = format!(r#"{{"type":"delete","id":"{id}"}}"#);
        assert_eq!(parse_client_event(&no_room), Err(ErrorCode::BadRoom));
    }

    #[test]
    fn a_refresh_needs_a_token() {
        assert_eq!(
            parse_client_event(r#"{"type":"refresh","token":"a.b.c"}"#),
            Ok(ClientEvent::Refresh {
                token: "a.b.c".into()
            })
        );
        for raw in [
            r#"{"type":"refresh"}"#,
            r#"{"type":"refresh","token":""}"#,
            r#"{"type":"refresh","token":7}"#,
        ] {
            assert_eq!(parse_client_event(raw), Err(ErrorCode::BadToken), "{raw}");
        }
    }

    #[test]
    fn controls_and_bidi_overrides_are_removed_before_the_checks() {
        let text = |raw: &str| match parse_client_event(
            &serde_json::json!({"type": "message", "text": raw}).to_string(),
        ) {
            Ok(ClientEvent::Message { text, .. }) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(text("a\nb\tc"), "a\nb\tc", "newline and tab stay");
        assert_eq!(text("a\r\nb\u{0}\u{1b}[2J\u{7f}\u{85}\u{9b}"), "a\nb[2J");
        assert_eq!(text("\u{202e}evil\u{202c} \u{2066}x\u{2069}"), "evil x");
        // Removed before the emptiness check, and before trimming.
        assert_eq!(text("\u{202e} \u{0} "), "");
        assert_eq!(text(" \u{1}hi\u{1} "), "hi");
        for c in ['\u{200e}', '\u{a0}', 'é', '한'] {
            assert!(!is_deceptive(c), "{c:?} is kept");
        }
        // Names: already limited to ASCII letters, digits, `_`, `-` and
        // spaces, so a control was refused (the name became `guest`); now it
        // is removed first, as in texts.
        assert_eq!(clean_name(Some("ana\u{7}")), "ana");
        assert_eq!(clean_name(Some("\u{202e}ana")), "ana");
        assert_eq!(clean_name(Some("\u{202e}\u{0}")), "guest");
        assert_eq!(
            clean_name(Some("a\nb")),
            "guest",
            "a newline is not a name character"
        );
        assert_eq!(clean_name(Some("a\tb")), "guest");
        let long = "\u{202e}".repeat(30) + "bob";
        assert_eq!(
            clean_name(Some(&long)),
            "bob",
            "removed before the 24-character cut"
        );
    }

    #[test]
    fn client_events_parse_with_reference_error_codes() {
        assert_eq!(
            parse_client_event(r#"{"type":"message","text":" hi "}"#),
            Ok(ClientEvent::Message {
                room: None,
                text: "hi".into()
            })
        );
        assert_eq!(parse_client_event("nope"), Err(ErrorCode::BadJson));
        assert_eq!(
            parse_client_event(r#"{"type":"typing"}"#),
            Err(ErrorCode::BadType)
        );
        assert_eq!(parse_client_event("[1]"), Err(ErrorCode::BadType));
        assert_eq!(parse_client_event("null"), Err(ErrorCode::BadType));
        assert_eq!(
            parse_client_event(r#"{"type":"message","text":7}"#),
            Ok(ClientEvent::Message {
                room: None,
                text: "7".into()
            })
        );
        assert_eq!(
            parse_client_event(r#"{"type":"message"}"#),
            Ok(ClientEvent::Message {
                room: None,
                text: String::new()
            })
        );
    }
}
