//! Room namespaces end to end: a dashboard namespace where only moderators
//! publish, with no presence events and a short history, beside rooms that
//! keep the defaults (version 1's behaviour); on the memory broker and on a
//! real Redis.

mod common;

use common::jwt::{start_with_config, write};
use common::redis::RedisServer;
use common::{connect, wait_readyz, Client, TestServer, ORIGIN, TOKEN};

async fn joined(s: &TestServer, token: &str, room: &str) -> Client {
    let url = format!("ws://{}/chat?token={token}&room={room}", s.addr);
    let mut c = connect(&url, Some(ORIGIN)).await.unwrap();
    c.next_of("history").await;
    c
}

#[tokio::test]
async fn a_dashboard_namespace_takes_only_moderators_messages_without_presence() {
    dashboard(&[]).await;
}

#[tokio::test]
async fn on_redis_the_namespace_history_size_holds_too() {
    let r = RedisServer::start();
    let env = r.env();
    let vars = common::redis::as_vars(&env);
    dashboard(&vars).await;
}

async fn dashboard(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write(
        dir.path(),
        "tokens.toml",
        format!(
            "[[tokens]]\ntoken = \"{TOKEN}\"\n\n[[tokens]]\ntoken = \"ci-token\"\nuser = \"ci\"\n\
             perm = [\"read\", \"write\", \"moderate\"]\n"
        ),
    );
    let config = format!(
        "[auth]\ntokens_file = \"{tokens}\"\n\n\
         [[rooms.namespaces]]\npattern = \"dash-*\"\nclient_publish = false\npresence = false\nhistory = 2\n"
    );
    let s = start_with_config(&dir.path().join("c.toml"), &config, env).await;
    wait_readyz(s.admin, 200, std::time::Duration::from_secs(5)).await;

    let mut viewer = joined(&s, TOKEN, "dash-builds").await;
    let mut ci = joined(&s, "ci-token", "dash-builds").await;
    // A client may not publish here; the moderator (a backend's token) may.
    viewer.say("hello?").await;
    let e = viewer.next_of("error").await;
    assert_eq!(e["code"], "forbidden");
    for i in 0..3 {
        ci.say(&format!("build {i}")).await;
    }
    // No presence event came before the messages: the ci join was silent.
    for i in 0..3 {
        let ev = viewer.next().await;
        assert_eq!(ev["type"], "message", "{ev}");
        assert_eq!(ev["message"]["text"], format!("build {i}"));
    }
    // History keeps the namespace's two newest.
    let late = {
        let url = format!("ws://{}/chat?token={TOKEN}&room=dash-builds", s.addr);
        let mut c = connect(&url, Some(ORIGIN)).await.unwrap();
        c.next_of("history").await
    };
    let texts: Vec<&str> = late["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["build 1", "build 2"]);

    // Other rooms keep the defaults: guests publish, joins are announced.
    let mut a = joined(&s, TOKEN, "lobby").await;
    let _b = joined(&s, TOKEN, "lobby").await;
    let p = a.next_of("presence").await;
    assert_eq!(p["room"], "lobby");
    a.say("hi").await;
    assert_eq!(a.next_message().await["text"], "hi");
    s.stop().await;
}

#[tokio::test]
async fn a_member_cap_counts_every_replica_and_spares_moderators() {
    let r = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let tokens = write(
        dir.path(),
        "tokens.toml",
        format!(
            "[[tokens]]\ntoken = \"{TOKEN}\"\n\n[[tokens]]\ntoken = \"mod-token\"\nuser = \"mia\"\n\
             perm = [\"read\", \"write\", \"moderate\"]\n"
        ),
    );
    let config = format!(
        "[auth]\ntokens_file = \"{tokens}\"\n\n\
         [[rooms.namespaces]]\npattern = \"qa-*\"\nmax_members = 2\n"
    );
    let env = r.env();
    let vars = common::redis::as_vars(&env);
    let one = start_with_config(&dir.path().join("one.toml"), &config, &vars).await;
    let two = start_with_config(&dir.path().join("two.toml"), &config, &vars).await;
    for s in [&one, &two] {
        wait_readyz(s.admin, 200, std::time::Duration::from_secs(5)).await;
    }
    let _a = joined(&one, TOKEN, "qa-1").await;
    let _b = joined(&one, TOKEN, "qa-1").await;
    // The other replica sees the room full once the first reported its two
    // members (presence pacing: well under a second).
    let mut c = joined(&two, TOKEN, "lobby").await;
    let join = r#"{"type":"join","room":"qa-1"}"#;
    common::eventually(
        "room_full from the other replica",
        std::time::Duration::from_secs(5),
        async || {
            c.send_text(join).await;
            let answer = c.next().await;
            if answer["type"] == "history" {
                c.send_text(r#"{"type":"leave","room":"qa-1"}"#).await;
                c.next_of("left").await;
            }
            match answer["code"].as_str() {
                Some("room_full") => Ok(()),
                _ => Err(answer.to_string()),
            }
        },
    )
    .await;
    // A moderator still gets in; a version 1 client whose query-string room
    // is full is closed with 1013 (try again later).
    let _m = joined(&two, "mod-token", "qa-1").await;
    let url = format!("ws://{}/chat?token={TOKEN}&room=qa-1", two.addr);
    let mut late = connect(&url, Some(ORIGIN)).await.unwrap();
    assert_eq!(late.closed().await, Some(1013));
    assert!(
        two.metric(r#"wschat_room_joins_total{outcome="room_full"}"#)
            .await
            >= 2.0
    );
    one.stop().await;
    two.stop().await;
}

/// Retention: messages older than the namespace's `history_max_age` leave
/// history at the next publish or join (and, on Redis, the stored log).
async fn retention(env: &[(&str, &str)]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let config = "[[rooms.namespaces]]\npattern = \"qa-*\"\nhistory_max_age = \"2s\"\n";
    let s = start_with_config(&dir.path().join("c.toml"), config, env).await;
    wait_readyz(s.admin, 200, std::time::Duration::from_secs(5)).await;
    let mut writer = joined(&s, TOKEN, "qa-1").await;
    writer.say("old").await;
    writer.next_message().await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // Read-time: a joiner no longer sees it, even before the next publish.
    let history = |s: &TestServer| {
        let url = format!("ws://{}/chat?token={TOKEN}&room=qa-1", s.addr);
        async move {
            let mut c = connect(&url, Some(ORIGIN)).await.unwrap();
            let h = c.next_of("history").await;
            let texts: Vec<String> = h["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["text"].as_str().unwrap().to_string())
                .collect();
            texts
        }
    };
    assert_eq!(history(&s).await, Vec::<String>::new());
    writer.say("new").await;
    writer.next_message().await;
    assert_eq!(history(&s).await, ["new"]);
    s
}

#[tokio::test]
async fn history_max_age_drops_old_messages_from_memory() {
    retention(&[]).await.stop().await;
}

#[tokio::test]
async fn history_max_age_drops_old_messages_from_redis_too() {
    let r = RedisServer::start();
    let env = r.env();
    let vars = common::redis::as_vars(&env);
    let s = retention(&vars).await;
    // Gone from the stored log, not only from what joiners are shown.
    let len = r.query(&["XLEN", "wschat:{qa-1}:log"]);
    assert_eq!(len, redis::Value::Int(1));
    s.stop().await;
}
