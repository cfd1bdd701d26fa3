//! Client events on arbitrary text: never panics; accepted text is trimmed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_chat::protocol::{parse_client_event, ClientEvent};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ClientEvent::Message { text }) = parse_client_event(text) {
            assert_eq!(text.trim(), text.as_str());
        }
    }
});
