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
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
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
