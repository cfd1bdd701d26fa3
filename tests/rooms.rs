//! Several rooms per connection (protocol version 2, §9), end to end with a
//! real client: `join` with `since`, `leave`, `message` with `room`, the
//! room on every room event, the room cap, and permission checked at every
//! action against the grant in force now (a reload that takes a room away
//! makes a version 2 connection leave it and closes a version 1 one). On
//! Redis, a join through `join` on one replica sees what another publishes.

mod common;

use std::io::Write;
use std::time::Duration;

use common::redis::RedisServer;
use common::{connect, wait_readyz, Client, TestServer, ORIGIN};
use serde_json::{json, Value};

fn join(room: &str) -> String {
    json!({ "type": "join", "room": room }).to_string()
}

fn say_in(room: &str, text: &str) -> String {
    json!({ "type": "message", "room": room, "text": text }).to_string()
}

/// The next event that is not presence.
async fn next_event(c: &mut Client) -> Value {
    loop {
        let v = c.next().await;
        if v["type"] != "presence" {
            return v;
        }
    }
}

#[tokio::test]
async fn one_connection_holds_several_rooms_and_every_room_event_names_its_room() {
    let s = TestServer::start(&[("CHAT__LIMITS__MAX_ROOMS_PER_CONNECTION", "3")]).await;
    let (mut multi, history) = s.join("room=a&name=multi").await;
    assert_eq!(history["room"], "a");
    let (mut only_b, _) = s.join("room=b&name=onlyb").await;
    for room in ["b", "c"] {
        multi.send_text(&join(room)).await;
        let h = multi.next_of("history").await;
        assert_eq!(h["room"], room);
    }
    // The joins are announced in their rooms, with the room.
    loop {
        let p = only_b.next_of("presence").await;
        assert_eq!(p["room"], "b");
        if p["online"] == 2 {
            break;
        }
    }

    // A message names its room; a message without one goes to the room of
    // the query string. Each reaches only its room's members.
    multi.send_text(&say_in("b", "to b")).await;
    multi.send_text(&say_in("c", "to c")).await;
    multi.say("to a").await;
    let got: Vec<(String, String)> = {
        let mut got = Vec::new();
        while got.len() < 3 {
            let m = multi.next_message().await;
            got.push((
                m["room"].as_str().unwrap().into(),
                m["text"].as_str().unwrap().into(),
            ));
        }
        got
    };
    assert_eq!(
        got,
        [("b", "to b"), ("c", "to c"), ("a", "to a")].map(|(r, t)| (r.to_string(), t.to_string()))
    );
    let m = only_b.next_message().await;
    assert_eq!(
        (m["room"].as_str(), m["text"].as_str()),
        (Some("b"), Some("to b"))
    );

    // The cap, a second join of the same room, and rooms not joined.
    multi.send_text(&join("d")).await;
    let e = next_event(&mut multi).await;
    assert_eq!(
        (e["code"].as_str(), e["room"].as_str()),
        (Some("too_many_rooms"), Some("d"))
    );
    multi.send_text(&join("b")).await;
    assert_eq!(next_event(&mut multi).await["code"], "already_joined");
    multi.send_text(&say_in("z", "nope")).await;
    let e = next_event(&mut multi).await;
    assert_eq!(
        (e["code"].as_str(), e["room"].as_str()),
        (Some("not_joined"), Some("z"))
    );

    // Leaving: `left`, then nothing more from that room; a free place.
    multi
        .send_text(&json!({"type": "leave", "room": "b"}).to_string())
        .await;
    let left = next_event(&mut multi).await;
    assert_eq!(
        (
            left["type"].as_str(),
            left["room"].as_str(),
            left["reason"].as_str()
        ),
        (Some("left"), Some("b"), Some("leave"))
    );
    multi
        .send_text(&json!({"type": "leave", "room": "b"}).to_string())
        .await;
    assert_eq!(next_event(&mut multi).await["code"], "not_joined");
    only_b.say("after leave").await;
    assert_eq!(only_b.next_message().await["text"], "after leave");
    multi.send_text(&join("d")).await;
    assert_eq!(multi.next_of("history").await["room"], "d");
    multi.say("still in a").await;
    let m = multi.next_message().await;
    assert_eq!(
        (m["room"].as_str(), m["text"].as_str()),
        (Some("a"), Some("still in a"))
    );

    for (series, want) in [
        (r#"wschat_room_joins_total{outcome="joined"}"#, 5.0),
        (r#"wschat_room_joins_total{outcome="too_many_rooms"}"#, 1.0),
        (r#"wschat_room_leaves_total{reason="leave"}"#, 1.0),
    ] {
        assert_eq!(s.metric(series).await, want, "{series}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_join_resumes_after_since_without_loss_or_duplicates() {
    let s = TestServer::start(&[]).await;
    let (mut writer, _) = s.join("room=r&name=w").await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        writer.say(&format!("m{i}")).await;
        seqs.push(writer.next_message().await["seq"].as_u64().unwrap());
    }
    let (mut reader, h) = s.join("room=lobby&name=reader").await;
    assert_eq!(h["room"], "lobby");
    let epoch = {
        let (probe, h) = s.join("room=r&name=probe").await;
        probe.bye().await;
        h["epoch"].as_str().unwrap().to_string()
    };
    reader
        .send_text(
            &json!({"type": "join", "room": "r", "since": seqs[2], "epoch": epoch}).to_string(),
        )
        .await;
    let h = reader.next_of("history").await;
    let texts: Vec<&str> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["m3", "m4"]);
    writer.say("m5").await;
    let m = reader.next_message().await;
    assert_eq!(
        (m["room"].as_str(), m["text"].as_str()),
        (Some("r"), Some("m5"))
    );
    s.stop().await;
}

#[tokio::test]
async fn every_action_is_checked_against_the_grant_in_force_now() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let grants = |rooms: &str| {
        format!(
            "[[tokens]]\ntoken = \"v2\"\nrooms = [{rooms}]\n\n\
             [[tokens]]\ntoken = \"v1\"\nrooms = [{rooms}]\n\n\
             [[tokens]]\ntoken = \"reader\"\nread_only = true\n"
        )
    };
    write!(file, "{}", grants("\"a\", \"ops-*\"")).unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let s = TestServer::start(&[("CHAT__AUTH__TOKENS_FILE", &path)]).await;
    let url = |t: &str, room: &str| format!("ws://{}/chat?token={t}&room={room}", s.addr);
    let mut v2 = connect(&url("v2", "a"), Some(ORIGIN)).await.unwrap();
    v2.next_of("history").await;
    // Join: only rooms the grant names.
    v2.send_text(&join("lobby")).await;
    let e = v2.next_of("error").await;
    assert_eq!(
        (e["code"].as_str(), e["room"].as_str()),
        (Some("forbidden"), Some("lobby"))
    );
    v2.send_text(&join("ops-1")).await;
    v2.next_of("history").await;
    let mut v1 = connect(&url("v1", "ops-1"), Some(ORIGIN)).await.unwrap();
    v1.next_of("history").await;
    // Send: a read-only token may join but not send.
    let mut reader = connect(&url("reader", "a"), Some(ORIGIN)).await.unwrap();
    reader.next_of("history").await;
    reader.send_text(&join("ops-2")).await;
    reader.next_of("history").await;
    reader.send_text(&say_in("ops-2", "x")).await;
    let e = reader.next_of("error").await;
    assert_eq!(
        (e["code"].as_str(), e["room"].as_str()),
        (Some("forbidden"), Some("ops-2"))
    );

    // A reload takes ops-* away: the version 2 connection leaves ops-1 and
    // stays in `a`; the version 1 connection in ops-1 is closed.
    std::fs::write(file.path(), grants("\"a\"")).unwrap();
    let left = v2.next_of("left").await;
    assert_eq!(
        (left["room"].as_str(), left["reason"].as_str()),
        (Some("ops-1"), Some("forbidden"))
    );
    assert_eq!(v1.closed_within(Duration::from_secs(3)).await, Some(1008));
    v2.send_text(&say_in("ops-1", "gone")).await;
    assert_eq!(v2.next_of("error").await["code"], "not_joined");
    v2.send_text(&join("ops-1")).await;
    assert_eq!(v2.next_of("error").await["code"], "forbidden");
    v2.say("still in a").await;
    assert_eq!(v2.next_message().await["text"], "still in a");
    assert_eq!(
        s.metric(r#"wschat_room_leaves_total{reason="forbidden"}"#)
            .await,
        1.0
    );
    s.stop().await;
}

#[tokio::test]
async fn on_redis_a_join_sees_what_another_replica_publishes() {
    let r = RedisServer::start();
    let env = r.env();
    let vars = common::redis::as_vars(&env);
    let (one, two) = (
        TestServer::start(&vars).await,
        TestServer::start(&vars).await,
    );
    for s in [&one, &two] {
        wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    }
    let (mut writer, _) = two.join("room=shared&name=w").await;
    writer.say("before").await;
    let before = writer.next_message().await["seq"].as_u64().unwrap();
    let (mut reader, _) = one.join("room=lobby&name=r").await;
    // The first join of `shared` on this replica subscribes it: the history
    // and the live stream meet without a gap or a repeat.
    reader.send_text(&join("shared")).await;
    let h = reader.next_of("history").await;
    assert_eq!(h["messages"][0]["seq"].as_u64(), Some(before));
    for i in 0..15 {
        writer.say(&format!("live {i}")).await;
    }
    for i in 0..15 {
        let m = reader.next_message().await;
        assert_eq!(
            (m["room"].as_str(), m["text"].as_str()),
            (Some("shared"), Some(format!("live {i}").as_str()))
        );
    }
    one.stop().await;
    two.stop().await;
}
