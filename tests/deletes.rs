//! Deleting messages (protocol version 2, §10), end to end with real
//! clients: the identified author and a moderator may, others may not; the
//! message leaves history (later joiners and `since` resumes never see it)
//! and every member gets `deleted`, on the memory broker and across two
//! replicas on a real Redis.

mod common;

use std::io::Write;
use std::time::Duration;

use common::redis::RedisServer;
use common::{connect, wait_readyz, Client, TestServer, ORIGIN};
use serde_json::{json, Value};

const TOKENS: &str = "[[tokens]]\ntoken = \"ana-token\"\nuser = \"ana\"\nname = \"Ana\"\n\n\
     [[tokens]]\ntoken = \"bo-token\"\nuser = \"bo\"\nname = \"Bo\"\n\n\
     [[tokens]]\ntoken = \"mod-token\"\nuser = \"mia\"\nname = \"Mia\"\n\
     perm = [\"read\", \"write\", \"moderate\"]\n\n\
     [[tokens]]\ntoken = \"guest-token\"\n";

fn tokens_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, "{TOKENS}").unwrap();
    file
}

async fn joined(s: &TestServer, token: &str) -> Client {
    let url = format!("ws://{}/chat?token={token}&room=r", s.addr);
    let mut c = connect(&url, Some(ORIGIN)).await.unwrap();
    c.next_of("history").await;
    c
}

fn delete(id: &str) -> String {
    json!({ "type": "delete", "room": "r", "id": id }).to_string()
}

/// Sends `text` and returns its message as everyone sees it.
async fn post(c: &mut Client, text: &str) -> Value {
    c.say(text).await;
    c.next_message().await
}

#[tokio::test]
async fn authors_and_moderators_delete_and_the_message_leaves_history() {
    let file = tokens_file();
    let path = file.path().to_str().unwrap().to_string();
    let s = TestServer::start(&[("CHAT__AUTH__TOKENS_FILE", &path)]).await;
    let (mut ana, mut bo, mut mia, mut guest) = (
        joined(&s, "ana-token").await,
        joined(&s, "bo-token").await,
        joined(&s, "mod-token").await,
        joined(&s, "guest-token").await,
    );
    let first = post(&mut ana, "first").await;
    let second = post(&mut ana, "second").await;
    for _ in 0..2 {
        guest.next_message().await;
    }
    let by_guest = post(&mut guest, "guest says").await;
    for c in [&mut bo, &mut mia] {
        for _ in 0..3 {
            c.next_message().await;
        }
    }

    // Not the author, not a moderator; a guest has no authorship at all.
    bo.send_text(&delete(first["id"].as_str().unwrap())).await;
    let e = bo.next_of("error").await;
    assert_eq!(
        (e["code"].as_str(), e["room"].as_str()),
        (Some("forbidden"), Some("r"))
    );
    guest
        .send_text(&delete(by_guest["id"].as_str().unwrap()))
        .await;
    assert_eq!(guest.next_of("error").await["code"], "forbidden");
    bo.send_text(&delete("0b6c4c2e-6a0e-4a8e-9d0e-3c4f8e7a1b2c"))
        .await;
    assert_eq!(bo.next_of("error").await["code"], "not_found");

    // The author deletes its own; every member is told, with the seq.
    ana.send_text(&delete(first["id"].as_str().unwrap())).await;
    for c in [&mut ana, &mut bo, &mut mia, &mut guest] {
        let d = c.next_of("deleted").await;
        assert_eq!(d["id"], first["id"]);
        assert_eq!(
            (d["room"].as_str(), d["seq"].as_u64()),
            (Some("r"), first["seq"].as_u64())
        );
    }
    // A moderator deletes anyone's, a guest's included.
    mia.send_text(&delete(by_guest["id"].as_str().unwrap()))
        .await;
    let answer = mia.next().await;
    assert_eq!(answer["type"], "deleted", "{answer}");
    assert_eq!(bo.next_of("deleted").await["id"], by_guest["id"]);
    // Deleting it again: gone.
    ana.send_text(&delete(first["id"].as_str().unwrap())).await;
    assert_eq!(ana.next_of("error").await["code"], "not_found");

    // A later joiner and a resume from before it see only what is left.
    let late = joined_history(&s, "bo-token", "").await;
    assert_eq!(texts(&late), ["second"]);
    let resumed = joined_history(
        &s,
        "bo-token",
        &format!(
            "&since={}&epoch={}",
            first["seq"].as_u64().unwrap() - 1,
            late["epoch"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(texts(&resumed), ["second"]);
    assert_eq!(second["text"], "second");

    for (series, want) in [
        (r#"wschat_message_deletes_total{outcome="author"}"#, 1.0),
        (r#"wschat_message_deletes_total{outcome="moderator"}"#, 1.0),
        (r#"wschat_message_deletes_total{outcome="forbidden"}"#, 2.0),
        (r#"wschat_message_deletes_total{outcome="not_found"}"#, 2.0),
    ] {
        assert_eq!(s.metric(series).await, want, "{series}");
    }
    s.stop().await;
}

async fn joined_history(s: &TestServer, token: &str, query: &str) -> Value {
    let url = format!("ws://{}/chat?token={token}&room=r{query}", s.addr);
    let mut c = connect(&url, Some(ORIGIN)).await.unwrap();
    c.next_of("history").await
}

fn texts(history: &Value) -> Vec<String> {
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn on_redis_a_delete_reaches_every_replica_and_its_history() {
    let r = RedisServer::start();
    let file = tokens_file();
    let path = file.path().to_str().unwrap().to_string();
    let env = r.env();
    let mut vars = common::redis::as_vars(&env);
    vars.push(("CHAT__AUTH__TOKENS_FILE", &path));
    let (one, two) = (
        TestServer::start(&vars).await,
        TestServer::start(&vars).await,
    );
    for s in [&one, &two] {
        wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    }
    let mut ana = joined(&one, "ana-token").await;
    let mut bo = joined(&two, "bo-token").await;
    let kept = post(&mut ana, "kept").await;
    let gone = post(&mut ana, "gone").await;
    for _ in 0..2 {
        bo.next_message().await;
    }
    bo.send_text(&delete(gone["id"].as_str().unwrap())).await;
    assert_eq!(bo.next_of("error").await["code"], "forbidden");
    ana.send_text(&delete(gone["id"].as_str().unwrap())).await;
    let d = bo.next_of("deleted").await;
    assert_eq!(
        (d["id"].as_str(), d["seq"].as_u64()),
        (gone["id"].as_str(), gone["seq"].as_u64())
    );
    let late = joined_history(&two, "guest-token", "").await;
    assert_eq!(texts(&late), [kept["text"].as_str().unwrap()]);
    one.stop().await;
    two.stop().await;
}
