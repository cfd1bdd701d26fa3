//! A room's log that went back, as after an asynchronous failover whose new
//! master lacks the newest messages: the lost tail is made by hand on a real
//! `redis-server`, then every connection to it is killed, as a failover
//! does. No seq may be handed out twice: members and resuming clients take
//! a seq they have seen for a message they have, and would drop the new one.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::{wait_readyz, TestServer};

async fn server(r: &RedisServer) -> TestServer {
    let env = r.env();
    let mut vars = common::redis::as_vars(&env);
    vars.extend([
        ("CHAT__LIMITS__MESSAGE_BURST", "1000"),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "1000"),
    ]);
    let s = TestServer::start(&vars).await;
    wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    s
}

#[tokio::test]
async fn seqs_are_not_reused_after_the_log_lost_its_tail() {
    let r = RedisServer::start();
    let (a_srv, b_srv) = (server(&r).await, server(&r).await);
    let (mut a, _) = a_srv.join("name=a&room=lost").await;
    let (mut b, _) = b_srv.join("name=b&room=lost").await;
    for i in 1..=10 {
        a.say(&format!("m{i}")).await;
        assert_eq!(a.next_message().await["seq"], i);
        assert_eq!(b.next_message().await["seq"], i);
    }
    // The new master never got messages 8 to 10...
    r.query(&["HSET", "wschat:{lost}:meta", "seq", "7"]);
    for id in ["8-0", "9-0", "10-0"] {
        r.query(&["XDEL", "wschat:{lost}:log", id]);
    }
    // ...and every connection to the old one broke.
    r.query(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    r.query(&["CLIENT", "KILL", "TYPE", "normal"]);
    let skipped = common::eventually(
        "the lost seqs to be skipped",
        Duration::from_secs(5),
        async || {
            let both = a_srv.metric("wschat_broker_lost_messages_total").await
                + b_srv.metric("wschat_broker_lost_messages_total").await;
            if both >= 3.0 {
                Ok(both)
            } else {
                Err(both)
            }
        },
    )
    .await;
    assert_eq!(skipped, 3.0, "counted once, by the replica that repaired");
    let meta = r.query(&["HGET", "wschat:{lost}:meta", "seq"]);
    assert_eq!(meta, redis::Value::BulkString(b"10".to_vec()));
    // Both replicas are back (the repair ran on one of them; the other may
    // still be reconnecting).
    for s in [&a_srv, &b_srv] {
        wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    }
    b.say("after").await;
    for c in [&mut a, &mut b] {
        let m = c.next_message().await;
        assert_eq!(
            (m["seq"].as_u64(), m["text"].as_str()),
            (Some(11), Some("after"))
        );
    }
    // A client resuming after seq 7 gets what the log still has: the new message.
    let (mut late, history) = a_srv.join("name=late&room=lost&since=7").await;
    let seqs: Vec<u64> = history["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["seq"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(seqs, vec![11], "{history}");
    late.say("later").await;
    assert_eq!(late.next_message().await["seq"], 12);
}
