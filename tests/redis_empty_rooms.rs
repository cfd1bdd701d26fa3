//! Rooms that were joined but never written, with the Redis broker and a
//! real `redis-server` (issue 16, part 2): they leave no key that lives for
//! `history_ttl`, and the epoch a joiner gets stays the room's epoch while
//! anyone is in it, so resuming after the first message is seamless.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::{eventually, wait_readyz, TestServer};

/// Presence TTL of the servers under test: the presence refresh renews
/// every third of it.
const PRESENCE_TTL_MS: i64 = 600;

async fn server(r: &RedisServer) -> TestServer {
    let env = r.env();
    let mut vars = common::redis::as_vars(&env);
    vars.push(("CHAT__BROKER__PRESENCE_TTL", "600ms"));
    let s = TestServer::start(&vars).await;
    wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    s
}

fn int(r: &RedisServer, args: &[&str]) -> i64 {
    match r.query(args) {
        redis::Value::Int(n) => n,
        other => panic!("{args:?}: {other:?}"),
    }
}

/// Keys of `room` that exist now, with their TTL in ms (-1: none).
fn keys_of(r: &RedisServer, room: &str) -> Vec<(String, i64)> {
    ["meta", "log", "online"]
        .iter()
        .map(|k| format!("wschat:{{{room}}}:{k}"))
        .filter(|k| int(r, &["EXISTS", k]) == 1)
        .map(|k| {
            let ttl = int(r, &["PTTL", &k]);
            (k, ttl)
        })
        .collect()
}

#[tokio::test]
async fn a_room_joined_and_left_without_a_message_leaves_no_key_beyond_the_presence_ttl() {
    let r = RedisServer::start();
    let s = server(&r).await;
    let (c, history) = s.join("room=quiet").await;
    assert!(history["epoch"].is_string());
    // Before: `meta` with the history TTL (24 h) from the history read alone.
    assert_eq!(
        int(&r, &["EXISTS", "wschat:{quiet}:meta"]),
        0,
        "{:?}",
        keys_of(&r, "quiet")
    );
    assert_eq!(int(&r, &["EXISTS", "wschat:{quiet}:log"]), 0);
    for (key, ttl) in keys_of(&r, "quiet") {
        assert!(
            (0..=PRESENCE_TTL_MS).contains(&ttl),
            "{key} has TTL {ttl} ms"
        );
    }
    c.bye().await;
    eventually(
        "every key of the room to expire",
        Duration::from_secs(5),
        async || match keys_of(&r, "quiet") {
            keys if keys.is_empty() => Ok(()),
            keys => Err(keys),
        },
    )
    .await;

    // A written room keeps its history for history_ttl, as before.
    let (mut c, _) = s.join("room=loud").await;
    c.say("kept").await;
    c.next_message().await;
    let ttl = int(&r, &["PTTL", "wschat:{loud}:meta"]);
    assert!(ttl > 23 * 3600 * 1000, "meta TTL {ttl} ms after a message");
    c.bye().await;
    s.stop().await;
}

#[tokio::test]
async fn the_epoch_of_an_empty_room_holds_while_someone_is_in_it_and_carries_its_first_message() {
    let r = RedisServer::start();
    let (s1, s2) = (server(&r).await, server(&r).await);
    let (mut a, history) = s1.join("room=wait&name=a").await;
    let epoch = history["epoch"].as_str().expect("epoch").to_string();
    // Several presence TTLs pass with nobody writing: the refresh keeps the
    // epoch; a joiner on the other replica gets the same one.
    tokio::time::sleep(Duration::from_millis(4 * PRESENCE_TTL_MS as u64)).await;
    let (mut b, history) = s2.join("room=wait&name=b").await;
    assert_eq!(history["epoch"], epoch.as_str());
    // A join, a leave and a resume with `since` inside the TTL: same epoch.
    let (c, _) = s2.join("room=wait&name=c").await;
    c.bye().await;
    let (c, history) = s2
        .join(&format!("room=wait&name=c&since=0&epoch={epoch}"))
        .await;
    assert_eq!(history["epoch"], epoch.as_str());
    c.bye().await;
    // The first message adopts it: a resume from what `a` saw needs nothing
    // and is not told the history was reset.
    b.say("first").await;
    assert_eq!(a.next_message().await["seq"], 1);
    a.bye().await;
    let (_, history) = s1
        .join(&format!("room=wait&name=a&since=1&epoch={epoch}"))
        .await;
    assert_eq!(history["epoch"], epoch.as_str());
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(0));
    // The waiting epoch is used once: it is gone from the presence hash.
    assert_eq!(int(&r, &["HEXISTS", "wschat:{wait}:online", "epoch"]), 0);
    s1.stop().await;
    s2.stop().await;
}
