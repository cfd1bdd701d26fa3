//! The gate's query parsing and input cleaning on arbitrary query strings:
//! never panics, and cleaned names and rooms always fit the protocol.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_chat::edge::gate::Query;
use ws_chat::protocol::{clean_name, clean_room};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let q = Query::parse(text);
    let name = clean_name(q.name.as_deref());
    assert!((1..=24).contains(&name.chars().count()));
    assert!(name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ' || c == '-'));
    let room = clean_room(q.room.as_deref());
    assert!((1..=32).contains(&room.len()));
    assert!(room
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
});
