//! What clients send: parsing a client event, and cleaning the name and
//! room a client asks for.

use super::ErrorCode;

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
}
