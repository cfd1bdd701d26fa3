//! The server API's request parsers on arbitrary bytes: every body and
//! query parser and the router either accept or refuse with a documented
//! error, never panic, and what they accept is within the documented limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_chat::api::input;
use ws_chat::api::route::{route, Method};

fuzz_target!(|data: &[u8]| {
    let check = |m: &input::Message| {
        assert!(!m.text.is_empty() && m.text.chars().count() <= 500);
        assert!(m.idempotency_key.as_ref().is_none_or(|k| (1..=128).contains(&k.len())));
    };
    if let Ok(m) = input::publish_body(data, 500) {
        check(&m);
    }
    if let Ok((rooms, m)) = input::publish_many_body(data, 500) {
        assert!((1..=input::MAX_ROOMS).contains(&rooms.len()));
        check(&m);
    }
    let _ = input::kick_body(data);
    if let Ok(reason) = input::disconnect_body(data) {
        assert!(reason.chars().count() <= 120);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = input::history_query(Some(text)) {
        assert!(q.limit.is_none_or(|l| (1..=input::MAX_LIMIT).contains(&l)));
    }
    if let Ok(q) = input::rooms_query(Some(text)) {
        assert!((1..=input::MAX_LIMIT).contains(&q.limit));
    }
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let _ = route(&method, text);
    }
});
