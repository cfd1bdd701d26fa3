//! RFC 6455 server duties, spoken in raw frames over TCP: every frame a
//! server must refuse gets the right close code, the frames it must answer
//! are answered, and a client in the same room keeps chatting throughout.

mod common;

use common::{Client, Raw, TestServer};

/// A server whose per-IP connect rate does not get in the way of many
/// short raw connections from 127.0.0.1.
async fn server() -> TestServer {
    TestServer::start(&[
        ("CHAT__LIMITS__IP_CONNECT_BURST", "10000"),
        ("CHAT__SESSION__CLOSE_TIMEOUT", "1s"),
    ])
    .await
}

/// Opens a raw connection in room `conf`, writes `bytes`, and returns the
/// close code the server answers with (None: cut without a close frame).
/// Also checks that the server then lets the socket go.
async fn answer_to(s: &TestServer, bytes: &[u8]) -> Option<u16> {
    let mut raw = Raw::connect(s.addr, "room=conf").await;
    raw.write(bytes).await;
    let code = raw.close_code().await;
    assert_eq!(
        raw.read_frame().await,
        None,
        "nothing after the close frame"
    );
    code
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    ws_chat::ws::frame::client_frame(fin, opcode, payload, [0x11, 0x22, 0x33, 0x44])
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// A well-behaved client in room `conf` sends a message and receives it.
async fn bystander_still_chats(c: &mut Client, text: &str) {
    c.say(text).await;
    assert_eq!(c.next_message().await["text"], text);
}

#[tokio::test]
async fn unmasked_frames_reserved_bits_and_unknown_opcodes_close_with_1002() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("unmasked text".into(), vec![0x81, 0x02, b'h', b'i']),
        ("unmasked ping".into(), vec![0x89, 0x00]),
    ];
    for rsv in [0x40u8, 0x20, 0x10] {
        let mut f = frame(true, 1, b"{}");
        f[0] |= rsv;
        cases.push((format!("rsv bit {rsv:#x}"), f));
    }
    for opcode in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        cases.push((format!("opcode {opcode:#x}"), frame(true, opcode, b"x")));
    }
    for (what, bytes) in cases {
        assert_eq!(answer_to(&s, &bytes).await, Some(1002), "{what}");
    }
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn control_frames_over_125_bytes_or_fragmented_close_with_1002() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    for opcode in [8u8, 9, 0xA] {
        let big = frame(true, opcode, &[b'a'; 126]);
        assert_eq!(
            answer_to(&s, &big).await,
            Some(1002),
            "{opcode:#x} with 126 bytes"
        );
        let fragmented = frame(false, opcode, b"");
        assert_eq!(
            answer_to(&s, &fragmented).await,
            Some(1002),
            "{opcode:#x} without FIN"
        );
    }
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn a_continuation_without_a_start_or_a_new_message_inside_a_fragmented_one_closes_with_1002()
{
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    let orphan = frame(true, 0, br#"{"type":"message","text":"x"}"#);
    assert_eq!(
        answer_to(&s, &orphan).await,
        Some(1002),
        "orphan continuation"
    );
    let orphan_unfinished = frame(false, 0, b"{");
    assert_eq!(answer_to(&s, &orphan_unfinished).await, Some(1002));
    let nested = concat(&[frame(false, 1, b"{\"type\""), frame(true, 1, b"{}")]);
    assert_eq!(answer_to(&s, &nested).await, Some(1002), "text inside text");
    let nested_binary = concat(&[frame(false, 1, b"{"), frame(true, 2, b"x")]);
    let code = answer_to(&s, &nested_binary).await;
    assert!(
        matches!(code, Some(1002 | 1003)),
        "binary inside text: {code:?}"
    );
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn invalid_utf8_in_text_even_split_across_fragments_or_in_a_close_reason_closes_with_1007() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    assert_eq!(answer_to(&s, &frame(true, 1, &[0xFF])).await, Some(1007));
    assert_eq!(
        answer_to(&s, &frame(true, 1, b"{\"text\":\"\xC3\x28\"}")).await,
        Some(1007)
    );
    // A surrogate half encoded in UTF-8 form is not UTF-8 either.
    assert_eq!(
        answer_to(&s, &frame(true, 1, &[0xED, 0xA0, 0x80])).await,
        Some(1007)
    );
    // "€" is E2 82 AC; cut after E2 82 and followed by "(": invalid only as a whole.
    let split_bad = concat(&[frame(false, 1, &[0xE2, 0x82]), frame(true, 0, b"(")]);
    assert_eq!(answer_to(&s, &split_bad).await, Some(1007));
    let mut reason = 1000u16.to_be_bytes().to_vec();
    reason.extend_from_slice(&[0xC3, 0x28]);
    assert_eq!(answer_to(&s, &frame(true, 8, &reason)).await, Some(1007));

    // The same character split at the same place but valid as a whole is a message.
    let mut raw = Raw::connect(s.addr, "room=conf&name=raw").await;
    let json = "{\"type\":\"message\",\"text\":\"5 €\"}".as_bytes();
    let cut = json.iter().position(|&b| b == 0xE2).unwrap() + 2;
    raw.write(&concat(&[
        frame(false, 1, &json[..cut]),
        frame(true, 0, &json[cut..]),
    ]))
    .await;
    assert_eq!(good.next_message().await["text"], "5 €");
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn invalid_close_codes_and_one_byte_close_payloads_close_with_1002() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let f = frame(true, 8, &code.to_be_bytes());
        assert_eq!(answer_to(&s, &f).await, Some(1002), "close code {code}");
    }
    assert_eq!(answer_to(&s, &frame(true, 8, &[0x03])).await, Some(1002));
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn a_message_over_2048_bytes_in_one_frame_or_in_fragments_closes_with_1009() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    let whole = frame(true, 1, &[b'a'; 2049]);
    assert_eq!(answer_to(&s, &whole).await, Some(1009), "one frame");
    // Only the header: the size is refused before the body is read.
    assert_eq!(answer_to(&s, &whole[..8]).await, Some(1009), "header only");
    let mut pieces: Vec<Vec<u8>> = vec![frame(false, 1, &[b'a'; 1000])];
    pieces.push(frame(false, 0, &[b'a'; 1000]));
    pieces.push(frame(true, 0, &[b'a'; 49]));
    assert_eq!(
        answer_to(&s, &concat(&pieces)).await,
        Some(1009),
        "fragments"
    );
    // 64 fragments of 33 bytes: many small frames add up too.
    let mut small: Vec<Vec<u8>> = vec![frame(false, 1, &[b'a'; 33])];
    small.extend((0..62).map(|_| frame(false, 0, &[b'a'; 33])));
    small.push(frame(true, 0, &[b'a'; 33]));
    assert_eq!(
        answer_to(&s, &concat(&small)).await,
        Some(1009),
        "64 fragments"
    );

    // Exactly 2048 bytes in fragments is a message: it gets too_large, not a close.
    let text = "b".repeat(2048 - r#"{"type":"message","text":""}"#.len());
    let json = format!(r#"{{"type":"message","text":"{text}"}}"#);
    assert_eq!(json.len(), 2048);
    let mut raw = Raw::connect(s.addr, "room=conf&name=raw").await;
    raw.write(&concat(&[
        frame(false, 1, &json.as_bytes()[..1024]),
        frame(true, 0, &json.as_bytes()[1024..]),
    ]))
    .await;
    loop {
        let (opcode, payload) = raw.read_frame().await.expect("a frame, not EOF");
        assert_ne!(opcode, 8, "closed: {payload:?}");
        if opcode == 1 && payload.windows(9).any(|w| w == b"too_large") {
            break;
        }
    }
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn a_64_bit_length_with_the_top_bit_set_is_closed() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    let mut f = vec![0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5];
    f.extend_from_slice(&[1, 2, 3, 4]);
    let code = answer_to(&s, &f).await;
    assert!(matches!(code, Some(1002) | None), "{code:?}");
    // The largest length without the top bit is just too big.
    let mut f = vec![0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    f.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(answer_to(&s, &f).await, Some(1009));
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn binary_frames_close_with_1003() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    assert_eq!(
        answer_to(&s, &frame(true, 2, b"\x00\x01")).await,
        Some(1003)
    );
    let fragmented = concat(&[frame(false, 2, b"\x00"), frame(true, 0, b"\x01")]);
    assert_eq!(answer_to(&s, &fragmented).await, Some(1003));
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn a_ping_gets_a_pong_with_the_same_payload_even_between_fragments() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    let mut raw = Raw::connect(s.addr, "room=conf&name=raw").await;
    for payload in [&b""[..], b"hello", &[0xA5; 125]] {
        raw.frame(true, 9, payload).await;
        loop {
            let (opcode, got) = raw.read_frame().await.expect("a pong");
            if opcode == 0xA {
                assert_eq!(got, payload);
                break;
            }
            assert_ne!(opcode, 8, "closed instead of pong");
        }
    }
    // A ping between the fragments of a message is answered, and the message still arrives.
    raw.frame(false, 1, br#"{"type":"message","#).await;
    raw.frame(true, 9, b"mid").await;
    raw.frame(true, 0, br#""text":"joined up"}"#).await;
    let mut ponged = false;
    loop {
        let (opcode, got) = raw.read_frame().await.expect("frames");
        if opcode == 0xA {
            assert_eq!(got, b"mid");
            ponged = true;
        }
        if opcode == 1 && got.windows(9).any(|w| w == b"joined up") {
            break;
        }
    }
    assert!(ponged, "pong before the message's echo");
    assert_eq!(good.next_message().await["text"], "joined up");
    bystander_still_chats(&mut good, "still here").await;
}

#[tokio::test]
async fn a_client_close_is_echoed_with_its_code_and_the_connection_ends() {
    let s = server().await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    for code in [1000u16, 1001, 3000, 4999] {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        assert_eq!(answer_to(&s, &frame(true, 8, &payload)).await, Some(code));
    }
    // An empty close is answered with an empty close.
    let mut raw = Raw::connect(s.addr, "room=conf").await;
    raw.frame(true, 8, b"").await;
    loop {
        let (opcode, payload) = raw.read_frame().await.expect("a close");
        if opcode == 8 {
            assert!(payload.is_empty(), "{payload:?}");
            break;
        }
    }
    assert_eq!(raw.read_frame().await, None);
    bystander_still_chats(&mut good, "still here").await;
}
