//! `session.direct_writes`: fan-out writes straight to idle sockets. Every
//! member still gets every message once, in seq order, with concurrent
//! publishers in one room; a ping is still answered before what the
//! message after it causes. Real sockets, a real server.

mod common;

use common::{Raw, TestServer};

const DIRECT: [(&str, &str); 3] = [
    ("CHAT__SESSION__DIRECT_WRITES", "true"),
    ("CHAT__LIMITS__MESSAGE_BURST", "1000"),
    ("CHAT__LIMITS__IP_MESSAGE_BURST", "100000"),
];

#[tokio::test]
async fn concurrent_publishers_reach_every_member_once_in_seq_order() {
    let s = TestServer::start(&DIRECT).await;
    let (members, publishers, each) = (20, 5, 30);
    let mut clients = Vec::new();
    for i in 0..members {
        clients.push(s.join(&format!("room=big&name=m{i}")).await.0);
    }
    let mut sending = Vec::new();
    for p in 0..publishers {
        let (mut c, _) = s.join(&format!("room=big&name=p{p}")).await;
        sending.push(tokio::spawn(async move {
            for n in 0..each {
                c.say(&format!("p{p} {n}")).await;
            }
            c
        }));
    }
    for task in sending {
        task.await.expect("publisher");
    }
    for c in &mut clients {
        let mut last = 0;
        for _ in 0..publishers * each {
            let m = c.next_message().await;
            let seq = m["seq"].as_u64().expect("seq");
            assert_eq!(seq, last + 1, "in order, none missing or doubled");
            last = seq;
        }
    }
    let delivered = s.metric("wschat_messages_delivered_total").await;
    // At least every member's (the publishers' own echoes may still be going out).
    let expected = (members * publishers * each) as f64;
    assert!(delivered >= expected, "{delivered} of {expected}");
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
