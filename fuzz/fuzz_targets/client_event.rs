//! Client events on arbitrary text: never panics; accepted text is trimmed,
//! and every room a version 2 event names is a valid room name as given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_chat::protocol::{parse_client_event, valid_room, ClientEvent};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match parse_client_event(text) {
            Ok(ClientEvent::Message { text, room }) => {
                assert_eq!(text.trim(), text.as_str());
                assert!(room.is_none_or(|r| valid_room(&r)));
            }
            Ok(ClientEvent::Join { room, .. })
            | Ok(ClientEvent::Leave { room })
            | Ok(ClientEvent::Who { room })
            | Ok(ClientEvent::Delete { room, .. }) => assert!(valid_room(&room)),
            Ok(ClientEvent::Refresh { token }) => assert!(!token.is_empty()),
            Err(_) => {}
        }
    }
});
