//! `session.direct_writes`: fan-out writes straight to idle sockets, and
//! `rooms.fanout_pause`: a big room's fan-out pauses between passes. Every
//! member still gets every message once, in seq order, with concurrent
//! publishers in one room; a ping is still answered before what the
//! message after it causes. Real sockets, a real server.

mod common;

use common::{Client, Raw, TestServer};

const DIRECT: [(&str, &str); 3] = [
    ("CHAT__SESSION__DIRECT_WRITES", "true"),
    ("CHAT__LIMITS__MESSAGE_BURST", "1000"),
    ("CHAT__LIMITS__IP_MESSAGE_BURST", "100000"),
];

#[tokio::test]
async fn concurrent_publishers_reach_every_member_once_in_seq_order() {
    let s = TestServer::start(&DIRECT).await;
    let (members, publishers, each) = (20, 5, 30);
    let (mut clients, _publishers) = publish_in(&s, "big", members, publishers, each).await;
    every_message_once_in_order(&mut clients, publishers * each).await;
    let delivered = s.metric("wschat_messages_delivered_total").await;
    // At least every member's (the publishers' own echoes may still be going out).
    let expected = (members * publishers * each) as f64;
    assert!(delivered >= expected, "{delivered} of {expected}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_room_that_pauses_between_passes_loses_and_reorders_nothing() {
    let s = TestServer::start(&[
        ("CHAT__ROOMS__FANOUT_PAUSE", "4"),
        ("CHAT__ROOMS__FANOUT_PAUSE_MAX", "20ms"),
        ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "2000"),
        ("CHAT__LIMITS__IP_CONNECT_BURST", "2000"),
        ("CHAT__LIMITS__MESSAGE_BURST", "1000"),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "100000"),
    ])
    .await;
    // A pass writes once to each of 800 sockets: past the 1 ms after which
    // a pass is followed by a pause, whatever the machine; and publishers
    // sending at once put several frames in a pass, which a pause needs.
    let (members, publishers, each) = (800, 3, 20);
    let (mut clients, _publishers) = publish_in(&s, "huge", members, publishers, each).await;
    every_message_once_in_order(&mut clients, publishers * each).await;
    let pauses = s.metric("wschat_fanout_pauses_total").await;
    assert!(pauses >= 1.0, "the fan-out paused: {pauses}");
    s.stop().await;
}

#[tokio::test]
async fn a_ping_before_a_message_is_answered_before_its_echo() {
    let s = TestServer::start(&DIRECT).await;
    let (mut good, _) = s.join("room=conf&name=good").await;
    let mut raw = Raw::connect(s.addr, "room=conf&name=raw").await;
    raw.frame(true, 9, b"first").await;
    raw.frame(true, 1, br#"{"type":"message","text":"after the ping"}"#)
        .await;
    let mut ponged = false;
    loop {
        let (opcode, got) = raw.read_frame().await.expect("frames");
        if opcode == 0xA {
            assert_eq!(got, b"first");
            ponged = true;
        }
        if opcode == 1 && got.windows(9).any(|w| w == b"the ping\"") {
            break;
        }
    }
    assert!(ponged, "pong before the message's echo");
    assert_eq!(good.next_message().await["text"], "after the ping");
    s.stop().await;
}

/// Joins `members` to `room`, then `publishers` more that each send `each`
/// messages at once; the members and the publishers, once every message
/// is sent.
async fn publish_in(
    s: &TestServer,
    room: &str,
    members: usize,
    publishers: usize,
    each: usize,
) -> (Vec<Client>, Vec<Client>) {
    let mut clients = Vec::new();
    for i in 0..members {
        clients.push(s.join(&format!("room={room}&name=m{i}")).await.0);
    }
    let mut sending = Vec::new();
    for p in 0..publishers {
        let (mut c, _) = s.join(&format!("room={room}&name=p{p}")).await;
        sending.push(tokio::spawn(async move {
            for n in 0..each {
                c.say(&format!("p{p} {n}")).await;
            }
            c
        }));
    }
    // The publishers stay connected: one dropped with its echoes unread
    // resets its connection, and the kernel throws away what the server
    // had not read of it yet (a race a slow machine loses, not a fault of
    // the server).
    let mut publishing = Vec::new();
    for task in sending {
        publishing.push(task.await.expect("publisher"));
    }
    (clients, publishing)
}

/// Each client reads `count` messages, seq 1 to `count`.
async fn every_message_once_in_order(clients: &mut [Client], count: usize) {
    for c in clients {
        for seq in 1..=count as u64 {
            let m = c.next_message().await;
            assert_eq!(
                m["seq"].as_u64(),
                Some(seq),
                "in order, none missing or doubled"
            );
        }
    }
}
