//! Property tests of every parser of client input: the frame decoder and
//! assembler, client events, name and room cleaning, query parsing, the
//! Origin rules, and the gate's answer to arbitrary queries and Origins
//! through a real server.

mod common;

use proptest::prelude::*;
use ws_chat::auth::{OriginPolicy, OriginRule};
use ws_chat::edge::gate::Query;
use ws_chat::protocol::close::CloseCode;
use ws_chat::protocol::{clean_name, clean_room, parse_client_event, ClientEvent};
use ws_chat::ws::frame::{client_frame, decode, Opcode};
use ws_chat::ws::inbound::{Assembler, Inbound};

fn name_ok(s: &str) -> bool {
    let n = s.chars().count();
    (1..=24).contains(&n)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ' || c == '-')
}

fn room_ok(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_and_never_claims_bytes_past_the_buffer(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        max in 0usize..4096,
    ) {
        let len = data.len();
        let mut buf = data;
        if let Ok(Some((frame, used))) = decode(&mut buf, max) {
            prop_assert!(used <= len);
            prop_assert!(used >= 6, "a masked frame is at least 6 bytes");
            prop_assert!(frame.payload.len() <= used);
            if frame.opcode.is_control() {
                prop_assert!(frame.payload.len() <= 125 && frame.fin);
            } else {
                prop_assert!(frame.payload.len() <= max);
            }
        }
    }

    #[test]
    fn decode_round_trips_client_frame_and_waits_on_every_prefix(
        fin in any::<bool>(),
        opcode in prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
        payload in proptest::collection::vec(any::<u8>(), 0..2100),
        mask in any::<[u8; 4]>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let raw = client_frame(fin, opcode, &payload, mask);
        let control = opcode >= 8;
        let mut whole = raw.clone();
        match decode(&mut whole, 2048) {
            Ok(Some((f, used))) => {
                prop_assert!(!control || (fin && payload.len() <= 125));
                prop_assert!(payload.len() <= 2048);
                prop_assert_eq!(used, raw.len());
                prop_assert_eq!(f.fin, fin);
                prop_assert_eq!(f.payload, &payload[..]);
                let expect = [Opcode::Continuation, Opcode::Text, Opcode::Binary];
                if !control {
                    prop_assert_eq!(f.opcode, expect[opcode as usize]);
                }
            }
            Ok(None) => prop_assert!(false, "a whole frame must decode"),
            Err(code) => {
                let too_big = !control && payload.len() > 2048;
                let bad_control = control && (!fin || payload.len() > 125);
                prop_assert!(too_big || bad_control);
                prop_assert_eq!(code, if too_big { CloseCode::TooBig } else { CloseCode::Protocol });
            }
        }
        // Any strict prefix either waits for more or fails on what it has seen.
        let at = cut.index(raw.len());
        let mut part = raw[..at].to_vec();
        prop_assert!(!matches!(decode(&mut part, 2048), Ok(Some(_))));
    }

    #[test]
    fn the_assembler_never_yields_more_than_its_limit_or_invalid_text(
        frames in proptest::collection::vec(
            (any::<bool>(), prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
             proptest::collection::vec(any::<u8>(), 0..300)),
            0..20),
    ) {
        let mut a = Assembler::new(1024);
        for (fin, opcode, payload) in frames {
            let mut raw = client_frame(fin, opcode, &payload, [1, 2, 3, 4]);
            let Ok(Some((frame, _))) = decode(&mut raw, a.budget()) else { break };
            match a.push(frame) {
                Ok(Some(Inbound::Text(t))) => prop_assert!(t.len() <= 1024),
                Ok(Some(Inbound::Ping(p))) => prop_assert!(p.len() <= 125),
                Ok(Some(Inbound::Close(_))) | Err(_) => break,
                Ok(_) => {}
            }
            prop_assert!(a.budget() <= 1024);
        }
    }

    #[test]
    fn parse_client_event_never_panics_and_returns_trimmed_text(raw in ".{0,200}") {
        if let Ok(ClientEvent::Message { text, .. }) = parse_client_event(&raw) {
            prop_assert_eq!(text.trim(), text.as_str());
        }
    }

    #[test]
    fn message_events_with_any_text_parse_to_that_text_trimmed(text in "\\PC{0,100}") {
        let raw = serde_json::json!({"type": "message", "text": text}).to_string();
        prop_assert_eq!(
            parse_client_event(&raw),
            Ok(ClientEvent::Message { room: None, text: text.trim().to_string() })
        );
    }

    #[test]
    fn cleaned_names_and_rooms_always_match_the_protocol(raw in any::<Option<String>>()) {
        let name = clean_name(raw.as_deref());
        prop_assert!(name_ok(&name), "{:?} -> {:?}", raw, name);
        let room = clean_room(raw.as_deref());
        prop_assert!(room_ok(&room), "{:?} -> {:?}", raw, room);
    }

    #[test]
    fn query_parse_never_panics_and_decodes_what_was_encoded(
        junk in "[a-z%&=+0-9A-F\\x00-\\x7f]{0,120}",
        token in "\\PC{0,40}",
    ) {
        let _ = Query::parse(&junk);
        let encoded: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
        let q = Query::parse(&format!("token={encoded}&{junk}"));
        prop_assert_eq!(q.token.as_deref(), Some(token.as_str()));
        prop_assert!(name_ok(&clean_name(q.name.as_deref())));
        prop_assert!(room_ok(&clean_room(q.room.as_deref())));
    }

    #[test]
    fn origin_rules_parse_without_panicking_and_a_policy_allows_only_its_exact_origins(
        rule in "(https?://)?[a-z0-9.*:/-]{0,30}",
        origin in "\\PC{0,40}",
    ) {
        let _ = OriginRule::parse(&rule);
        let policy = OriginPolicy::from_settings(&settings_with_origin("http://chat.example.com:8080"));
        let allowed = policy.allows(Some(&origin));
        prop_assert_eq!(allowed, origin == "http://chat.example.com:8080");
        prop_assert!(!policy.allows(None));
    }

    #[test]
    fn wildcard_origins_allow_only_subdomains_of_their_domain(origin in "https?://[a-z.A-Z0-9_-]{0,30}(\\.example\\.com)?(:[0-9]{1,5})?/?") {
        let policy = OriginPolicy::from_settings(&settings_with_origin("https://*.example.com"));
        if policy.allows(Some(&origin)) {
            let host = origin.strip_prefix("https://").and_then(|h| h.strip_suffix(".example.com"));
            let host = host.unwrap_or_else(|| panic!("allowed {origin}"));
            prop_assert!(!host.is_empty() && host.split('.').all(|l| !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')));
        }
    }
}

fn settings_with_origin(origin: &str) -> ws_chat::Settings {
    let sources = ws_chat::Sources::from_env(vec![(
        "CHAT__AUTH__ALLOWED_ORIGINS".to_string(),
        origin.to_string(),
    )]);
    ws_chat::load_settings(&sources).expect("settings")
}

/// Arbitrary query strings and Origin headers through a real server: the
/// gate always answers with one of its statuses and the server stays up.
#[test]
fn the_gate_answers_arbitrary_queries_and_origins_with_a_known_status() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(common::TestServer::start(&[
        ("CHAT__LIMITS__IP_CONNECT_BURST", "100000"),
        ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "100000"),
        ("CHAT__LIMITS__IP_AUTH_FAILURE_BURST", "100000"),
    ]));
    let addr = server.addr;
    let query = "[a-zA-Z0-9%&=+._~-]{0,80}|token=test-token&[a-zA-Z0-9%&=+._~-]{0,80}";
    let origin = "(http://localhost:8080|[ -~]{0,40}|[\\x80-\\xff]{1,4})";
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    });
    let result = runner.run(
        &(query, proptest::option::of(origin), any::<bool>()),
        |(query, origin, bearer)| {
            let status = rt.block_on(ask(addr, &query, origin.as_deref(), bearer));
            prop_assert!(
                [101, 400, 401, 403, 404, 426, 429, 503].contains(&status),
                "{status} for {query:?} {origin:?}"
            );
            Ok(())
        },
    );
    result.unwrap_or_else(|e| panic!("{e}"));
    // Still serving after all of that.
    let status = rt.block_on(ask(addr, "token=test-token", Some(common::ORIGIN), false));
    assert_eq!(status, 101);
}

async fn ask(addr: std::net::SocketAddr, query: &str, origin: Option<&str>, bearer: bool) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut req = format!(
        "GET /chat?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
    .into_bytes();
    if let Some(o) = origin {
        req.extend_from_slice(b"Origin: ");
        req.extend_from_slice(&o.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>());
        req.extend_from_slice(b"\r\n");
    }
    if bearer {
        req.extend_from_slice(b"Authorization: Bearer test-token\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(&req).await.expect("write");
    let mut head = [0u8; 12];
    match tokio::time::timeout(common::WAIT, s.read_exact(&mut head)).await {
        Ok(Ok(_)) => std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}
