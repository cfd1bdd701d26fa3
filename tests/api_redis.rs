//! The server API across replicas: two real `ws-chat` processes on one real
//! `redis-server`, on a Redis Cluster, and on a Sentinel-managed master. An
//! idempotent publish sent to both gives one message and one answer; a
//! disconnect or a kick asked of one replica reaches the other's
//! connections; members and rooms are counted on both.

mod common;

use std::time::Duration;

use common::api::{call, config, tokens, ALL};
use common::redis::RedisServer;
use common::redis_cluster::RedisCluster;
use common::redis_sentinel::RedisSentinel;
use common::{connect, wait_readyz, Client, Process, ORIGIN};
use serde_json::json;

fn replicas(env: &[(&'static str, String)], dir: &std::path::Path) -> (Process, Process) {
    let file = config(dir);
    let tokens = tokens(dir);
    let mut vars = common::redis::as_vars(env);
    vars.push(("CHAT__AUTH__TOKENS_FILE", &tokens));
    let args = ["--config", file.as_str()];
    (Process::start(&vars, &args), Process::start(&vars, &args))
}

async fn join(p: &Process, token: &str, room: &str) -> Client {
    let url = format!("ws://{}/chat?token={token}&room={room}&name=x", p.addr());
    let mut c = connect(&url, Some(ORIGIN)).await.expect("connect");
    c.next_of("system").await;
    c.next_of("history").await;
    c.send_text(&json!({"type": "who", "room": room}).to_string())
        .await;
    c.next_of("members").await;
    c
}

#[tokio::test]
async fn idempotency_control_and_listings_span_replicas() {
    let r = RedisServer::start();
    span_replicas(&r.env()).await;
}

#[tokio::test]
async fn on_a_cluster_idempotency_control_and_listings_span_replicas() {
    let c = RedisCluster::start();
    span_replicas(&c.env()).await;
}

#[tokio::test]
async fn behind_sentinels_idempotency_control_and_listings_span_replicas() {
    let s = RedisSentinel::start();
    span_replicas(&s.env()).await;
}

async fn span_replicas(env: &[(&'static str, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = replicas(env, dir.path());
    for p in [&one, &two] {
        wait_readyz(p.admin_addr(), 200, Duration::from_secs(10)).await;
    }
    let mut on_two = join(&two, "t-u1", "ops").await;
    let mut guest = join(&one, common::TOKEN, "ops").await;

    // The same idempotency key on both replicas: one message, one answer.
    let body = json!({ "text": "build 9 green", "idempotencyKey": "b9" }).to_string();
    let path = "/api/v1/rooms/ops/messages";
    let first = call(one.admin_addr(), "POST", path, Some(ALL), Some(&body)).await;
    let again = call(two.admin_addr(), "POST", path, Some(ALL), Some(&body)).await;
    assert_eq!(
        (first.status, again.status),
        (201, 200),
        "{} {}",
        first.text,
        again.text
    );
    assert_eq!(first.json, again.json);
    assert_eq!(on_two.next_message().await["text"], "build 9 green");
    guest.say("after").await;
    assert_eq!(on_two.next_message().await["seq"], 2, "no second copy");

    // Members and rooms, asked of the replica without the user.
    let m = call(
        one.admin_addr(),
        "GET",
        "/api/v1/rooms/ops/members",
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(m.json["online"], 2, "{}", m.text);
    assert_eq!(m.json["members"][0]["user"], "u1");
    let rooms = call(one.admin_addr(), "GET", "/api/v1/rooms", Some(ALL), None).await;
    assert_eq!(
        rooms.json,
        json!({"rooms": [{"room": "ops", "online": 2}], "next": null})
    );

    // A kick asked of replica one reaches the connection on replica two.
    let k = call(
        one.admin_addr(),
        "POST",
        "/api/v1/rooms/ops/kick",
        Some(ALL),
        Some(r#"{"user":"u1"}"#),
    )
    .await;
    assert_eq!((k.status, &k.json), (200, &json!({"removed": 1})));
    assert_eq!(on_two.next_of("left").await["reason"], "kicked");

    // A disconnect too, with its reason.
    let d = call(
        one.admin_addr(),
        "POST",
        "/api/v1/users/u1/disconnect",
        Some(ALL),
        Some(r#"{"reason":"account closed"}"#),
    )
    .await;
    assert_eq!((d.status, &d.json), (200, &json!({"disconnected": 1})));
    assert_eq!(
        on_two.close_frame().await,
        Some((4003, "account closed".to_string()))
    );

    // The audit log: one record per change, with no text, key or token.
    drop(guest);
    let outputs = [one, two].map(|p| {
        p.signal("TERM");
        p.wait_exit(Duration::from_secs(10)).1
    });
    let audit: Vec<serde_json::Value> = outputs
        .iter()
        .flat_map(|o| o.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "audit")
        .collect();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap_or(""),
                v["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("message.publish", "ok"),
            ("room.kick", "ok"),
            ("user.disconnect", "ok"),
            ("message.publish", "replayed"),
        ]
    );
    for v in &audit {
        assert_eq!(v["actor"], "api:ops", "{v}");
        assert!(v["at"].is_string() && v["subject"].is_string(), "{v}");
    }
    for o in &outputs {
        for secret in [ALL, "t-u1", "build 9 green", "account closed"] {
            assert!(!o.contains(secret), "`{secret}` in the logs");
        }
    }
}
