//! `who` → `members` (protocol version 2, §10), end to end with real
//! clients: identified users (named static tokens) listed once however many
//! connections they have, guests counted in `online` only, the cap of 100
//! with `truncated`, `not_joined` for a room the connection is not in. On
//! Redis: users on two replicas merged, and a replica that stops (cleanly,
//! or killed) drops out of the list like it drops out of the count.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::redis::RedisServer;
use common::{connect, eventually, wait_readyz, Client, Process, TestServer, ORIGIN, TOKEN};
use serde_json::{json, Value};

/// A tokens file: one named static token `t-<user>` per `(user, name)`.
fn tokens(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let mut text = String::new();
    for (user, name) in users {
        text.push_str(&format!(
            "[[tokens]]\ntoken = \"t-{user}\"\nuser = \"{user}\"\nname = \"{name}\"\n\n"
        ));
    }
    let path = dir.join("tokens.toml");
    std::fs::write(&path, text).expect("write tokens");
    path
}

/// Joins `room` at `addr` with `token`, reading `system` and `history`.
async fn join_at(addr: std::net::SocketAddr, token: &str, room: &str) -> Client {
    let url = format!("ws://{addr}/chat?token={token}&room={room}&name=g");
    let mut c = connect(&url, Some(ORIGIN))
        .await
        .unwrap_or_else(|s| panic!("refused with {s}"));
    c.next_of("system").await;
    c.next_of("history").await;
    c
}

/// Sends `who` for `room`; returns the `members` or `error` that answers it.
async fn who(c: &mut Client, room: &str) -> Value {
    c.send_text(&json!({ "type": "who", "room": room }).to_string())
        .await;
    loop {
        let v = c.next().await;
        if v["type"] == "members" || v["type"] == "error" {
            return v;
        }
    }
}

/// The users a `members` event lists, with their names, in its order.
fn listed(v: &Value) -> Vec<(String, String)> {
    v["members"]
        .as_array()
        .unwrap_or_else(|| panic!("not a members event: {v}"))
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap_or_default().to_string(),
                m["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(users: &[(&str, &str)]) -> Vec<(String, String)> {
    users
        .iter()
        .map(|(u, n)| (u.to_string(), n.to_string()))
        .collect()
}

/// Asks `who` until it lists exactly `users` with `online`; panics after 5 s.
async fn who_until(c: &mut Client, room: &str, users: &[(&str, &str)], online: u64) -> Value {
    let want = pairs(users);
    eventually(
        &format!("who {room} to list {want:?} with online {online}"),
        Duration::from_secs(5),
        async || {
            let v = who(c, room).await;
            if listed(&v) == want && v["online"] == online && v["truncated"] == false {
                Ok(v)
            } else {
                tokio::time::sleep(Duration::from_millis(80)).await;
                Err(v)
            }
        },
    )
    .await
}

/// Generous message budgets: the tests ask `who` repeatedly.
const BUDGETS: [(&str, &str); 3] = [
    ("CHAT__LIMITS__MESSAGE_BURST", "1000"),
    ("CHAT__LIMITS__IP_CONNECT_BURST", "1000"),
    ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "1000"),
];

fn env_with<'a>(extra: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    BUDGETS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

/// `n` users `u000`, `u001`, … named `n0`, `n1`, ….
fn numbered(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("u{i:03}"), format!("n{i}")))
        .collect()
}

/// Writes the tokens of `users` into `dir`; returns the file's path.
fn tokens_of(dir: &Path, users: &[(String, String)]) -> String {
    let refs: Vec<(&str, &str)> = users.iter().map(|(u, n)| (&**u, &**n)).collect();
    tokens(dir, &refs).to_string_lossy().into_owned()
}

/// The settings of a replica on `r` with the tokens in `file`, plus `extra`.
fn on_redis(r: &RedisServer, file: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = BUDGETS
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.extend(r.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    vars.push(("CHAT__AUTH__TOKENS_FILE".into(), file.into()));
    vars
}

fn refs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Two ready replicas with `vars`.
async fn two_replicas(vars: &[(String, String)]) -> (TestServer, TestServer) {
    let vars = refs(vars);
    let (one, two) = (
        TestServer::start(&vars).await,
        TestServer::start(&vars).await,
    );
    for s in [&one, &two] {
        wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    }
    (one, two)
}

/// Asks `who` until it counts `online`; returns that answer.
async fn who_online(c: &mut Client, room: &str, online: u64) -> Value {
    eventually(
        &format!("{online} online"),
        Duration::from_secs(5),
        async || {
            let v = who(c, room).await;
            match v["online"] == online {
                true => Ok(v),
                false => Err(v),
            }
        },
    )
    .await
}

#[tokio::test]
async fn who_lists_each_identified_user_once_and_counts_guests() {
    let dir = tempfile::tempdir().unwrap();
    let file = tokens(dir.path(), &[("u1", "Ana"), ("u2", "Bo")]);
    let file = file.to_str().unwrap();
    let s = TestServer::start(&env_with(&[("CHAT__AUTH__TOKENS_FILE", file)])).await;
    let a = join_at(s.addr, "t-u1", "r").await;
    let a2 = join_at(s.addr, "t-u1", "r").await;
    let _b = join_at(s.addr, "t-u2", "r").await;
    let mut guest = join_at(s.addr, TOKEN, "r").await;

    let v = who(&mut guest, "r").await;
    assert_eq!(
        (v["type"].as_str(), v["room"].as_str(), v["online"].as_u64()),
        (Some("members"), Some("r"), Some(4)),
        "{v}"
    );
    assert_eq!(listed(&v), pairs(&[("u1", "Ana"), ("u2", "Bo")]));
    assert_eq!(v["truncated"], false);

    // Members only; a room name must be valid.
    let e = who(&mut guest, "elsewhere").await;
    assert_eq!(
        (e["code"].as_str(), e["room"].as_str()),
        (Some("not_joined"), Some("elsewhere"))
    );
    guest.send_text(r#"{"type":"who"}"#).await;
    assert_eq!(guest.next_of("error").await["code"], "bad_room");

    // A user stays listed until its last connection leaves.
    a2.bye().await;
    who_until(&mut guest, "r", &[("u1", "Ana"), ("u2", "Bo")], 3).await;
    a.bye().await;
    who_until(&mut guest, "r", &[("u2", "Bo")], 2).await;

    assert!(
        s.metric(r#"wschat_who_requests_total{outcome="answered"}"#)
            .await
            >= 3.0
    );
    assert_eq!(
        s.metric(r#"wschat_who_requests_total{outcome="not_joined"}"#)
            .await,
        1.0
    );
    s.stop().await;
}

#[tokio::test]
async fn the_list_stops_at_100_users_and_says_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let users = numbered(101);
    let file = tokens_of(dir.path(), &users);
    let s = TestServer::start(&env_with(&[("CHAT__AUTH__TOKENS_FILE", &file)])).await;
    let mut clients = Vec::new();
    for (user, _) in &users {
        clients.push(join_at(s.addr, &format!("t-{user}"), "big").await);
    }
    let mut guest = join_at(s.addr, TOKEN, "big").await;
    let v = who(&mut guest, "big").await;
    assert_eq!(
        (
            v["online"].as_u64(),
            listed(&v).len(),
            v["truncated"].as_bool()
        ),
        (Some(102), 100, Some(true)),
        "{v}"
    );
    // One user fewer: all of them fit.
    if let Some(c) = clients.pop() {
        c.bye().await;
    }
    let v = who_online(&mut guest, "big", 101).await;
    assert_eq!(
        (listed(&v).len(), v["truncated"].as_bool()),
        (100, Some(false))
    );
    s.stop().await;
}

#[tokio::test]
async fn on_redis_users_of_every_replica_are_listed_once_and_a_stopped_replica_drops_out() {
    let r = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let users = [("u1", "Ana"), ("u2", "Bo")].map(|(u, n)| (u.to_string(), n.to_string()));
    let file = tokens_of(dir.path(), &users);
    let (one, two) = two_replicas(&on_redis(&r, &file, &[])).await;
    let _a = join_at(one.addr, "t-u1", "r").await;
    let _a2 = join_at(one.addr, "t-u1", "r").await;
    let mut guest = join_at(one.addr, TOKEN, "r").await;
    let _a3 = join_at(two.addr, "t-u1", "r").await;
    let mut b = join_at(two.addr, "t-u2", "r").await;

    let both = [("u1", "Ana"), ("u2", "Bo")];
    who_until(&mut guest, "r", &both, 5).await;
    who_until(&mut b, "r", &both, 5).await;

    // Replica two stops: its members leave, and it is no longer listed.
    two.stop().await;
    who_until(&mut guest, "r", &[("u1", "Ana")], 3).await;
    one.stop().await;
}

#[tokio::test]
async fn on_redis_a_killed_replica_stops_being_listed_when_it_stops_being_counted() {
    let r = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = tokens_of(dir.path(), &[("u2".into(), "Bo".into())]);
    let vars = on_redis(&r, &file, &[("CHAT__BROKER__PRESENCE_TTL", "1s")]);
    let vars = refs(&vars);
    let one = TestServer::start(&vars).await;
    let other = Process::start(&vars, &[]);
    wait_readyz(one.admin, 200, Duration::from_secs(5)).await;
    wait_readyz(other.admin_addr(), 200, Duration::from_secs(5)).await;
    let mut guest = join_at(one.addr, TOKEN, "r").await;
    let _b = join_at(other.addr(), "t-u2", "r").await;
    who_until(&mut guest, "r", &[("u2", "Bo")], 2).await;

    // SIGKILL: nothing is cleaned up; the entries expire after the TTL.
    drop(other);
    who_until(&mut guest, "r", &[], 1).await;
    one.stop().await;
}

#[tokio::test]
async fn on_redis_the_cap_counts_distinct_users_over_all_replicas() {
    let r = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let users = numbered(101);
    let file = tokens_of(dir.path(), &users);
    let (one, two) = two_replicas(&on_redis(&r, &file, &[])).await;
    // u000–u059 on one, u030–u100 on two: 101 users, 30 of them on both.
    let mut clients = Vec::new();
    for (user, _) in &users[..60] {
        clients.push(join_at(one.addr, &format!("t-{user}"), "big").await);
    }
    for (user, _) in &users[30..] {
        clients.push(join_at(two.addr, &format!("t-{user}"), "big").await);
    }
    let mut guest = join_at(one.addr, TOKEN, "big").await;
    let v = who_online(&mut guest, "big", 132).await;
    assert_eq!(
        (listed(&v).len(), v["truncated"].as_bool()),
        (100, Some(true))
    );
    // u100 (only on two) leaves: exactly 100 users, all listed.
    if let Some(c) = clients.pop() {
        c.bye().await;
    }
    let v = who_online(&mut guest, "big", 131).await;
    let want: Vec<(String, String)> = users[..100].to_vec();
    assert_eq!((listed(&v), v["truncated"].as_bool()), (want, Some(false)));
    one.stop().await;
    two.stop().await;
}
