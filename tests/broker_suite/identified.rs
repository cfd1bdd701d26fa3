//! Broker suite cases with identified users (a tokens file): deletions and
//! the member list, on each backend, across its replicas.

use std::io::Write;

use serde_json::{json, Value};

use super::common::{connect, Client, ORIGIN};
use super::{Cluster, Env};

const TOKENS: &str = "[[tokens]]\ntoken = \"ana-token\"\nuser = \"ana\"\nname = \"Ana\"\n\n\
     [[tokens]]\ntoken = \"bo-token\"\nuser = \"bo\"\nname = \"Bo\"\n\n\
     [[tokens]]\ntoken = \"mod-token\"\nuser = \"mia\"\nname = \"Mia\"\n\
     perm = [\"read\", \"write\", \"moderate\"]\n";

/// The tokens file (kept alive by the caller) and the setting naming it.
fn tokens() -> (tempfile::NamedTempFile, Env) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    write!(file, "{TOKENS}").expect("write tokens");
    let path = file.path().to_string_lossy().into_owned();
    (file, vec![("CHAT__AUTH__TOKENS_FILE", path)])
}

/// Joins `room` on replica `i` with `token`; returns the client and history.
async fn join(c: &Cluster, i: usize, token: &str, room: &str) -> (Client, Value) {
    let url = format!("ws://{}/chat?token={token}&room={room}", c.replica(i).addr);
    let mut client = connect(&url, Some(ORIGIN))
        .await
        .unwrap_or_else(|s| panic!("refused with {s}"));
    let history = client.next_of("history").await;
    (client, history)
}

fn texts(history: &Value) -> Vec<&str> {
    history["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default()
}

/// A deletion by the author is refused to another user, then reaches every
/// replica's members (with its seq) and leaves every replica's history.
pub(super) async fn deletions_reach_every_replica<F, Fut>(setup: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: std::future::Future<Output = Cluster>,
{
    let (_file, env) = tokens();
    let c = setup(env).await;
    let (mut ana, _) = join(&c, 0, "ana-token", "del").await;
    let (mut bo, _) = join(&c, 1, "bo-token", "del").await;
    ana.say("kept").await;
    ana.say("gone").await;
    let _kept = ana.next_message().await;
    let gone = ana.next_message().await;
    for _ in 0..2 {
        bo.next_message().await;
    }
    let id = gone["id"].as_str().expect("an id").to_string();
    let delete = json!({ "type": "delete", "room": "del", "id": id }).to_string();
    bo.send_text(&delete).await;
    assert_eq!(bo.next_of("error").await["code"], "forbidden");
    ana.send_text(&delete).await;
    for client in [&mut ana, &mut bo] {
        let d = client.next_of("deleted").await;
        assert_eq!(
            (d["id"].as_str(), d["seq"].as_u64()),
            (Some(id.as_str()), gone["seq"].as_u64())
        );
    }
    for i in 0..2 {
        let (_, history) = join(&c, i, "mod-token", "del").await;
        assert_eq!(texts(&history), ["kept"], "replica {i}: {history}");
    }
}

/// `who` on either replica lists every identified user once, wherever they
/// are connected, and counts every connection.
pub(super) async fn members_list_every_replica_once<F, Fut>(setup: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: std::future::Future<Output = Cluster>,
{
    let (_file, env) = tokens();
    let c = setup(env).await;
    let (_ana, _) = join(&c, 0, "ana-token", "who").await;
    let (_ana_again, _) = join(&c, 1, "ana-token", "who").await;
    let (mut bo, _) = join(&c, 1, "bo-token", "who").await;
    let want = vec![
        ("ana".to_string(), "Ana".to_string()),
        ("bo".to_string(), "Bo".to_string()),
    ];
    let listed = super::common::eventually(
        "every user listed once (seen: the last members event)",
        super::common::WAIT,
        async || {
            bo.send_text(&json!({ "type": "who", "room": "who" }).to_string())
                .await;
            let v = bo.next_of("members").await;
            let mut users: Vec<(String, String)> = v["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .map(|u| {
                            let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
                            (s("user"), s("name"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            users.sort();
            if users == want && v["online"].as_u64() == Some(3) {
                Ok(v)
            } else {
                Err(v)
            }
        },
    )
    .await;
    assert_eq!(listed["room"], "who", "{listed}");
}
