//! A real Redis Cluster beyond failover: a room's slot moving between
//! masters under traffic (`CLUSTER SETSLOT ... MIGRATING/IMPORTING`,
//! `MIGRATE`, then `SETSLOT ... NODE`, as `redis-cli --cluster reshard`
//! does), where the room's keys and sharded channel change node, redis-rs
//! follows MOVED/ASK, and every member on both replicas still gets every
//! message, in order; and a cluster whose every node asks for a password.

mod common;

use std::time::Duration;

use common::redis::as_vars;
use common::redis_cluster::RedisCluster;
use common::{wait_readyz, Client, TestServer};

const ROOM: &str = "moving";

fn text(v: redis::Value) -> String {
    redis::from_redis_value(v).expect("a text reply")
}

/// Moves `slot` from master `from` to master `to`, keys included.
fn move_slot(c: &RedisCluster, slot: &str, from: usize, to: usize) {
    let (from_id, to_id) = (
        text(c.query(from, &["CLUSTER", "MYID"])),
        text(c.query(to, &["CLUSTER", "MYID"])),
    );
    c.query(to, &["CLUSTER", "SETSLOT", slot, "IMPORTING", &from_id]);
    c.query(from, &["CLUSTER", "SETSLOT", slot, "MIGRATING", &to_id]);
    let keys: Vec<String> =
        redis::from_redis_value(c.query(from, &["CLUSTER", "GETKEYSINSLOT", slot, "1000"]))
            .expect("a list of keys");
    let port = c.port(to).to_string();
    for key in &keys {
        c.query(
            from,
            &["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", key],
        );
    }
    for node in c.masters() {
        c.query(node, &["CLUSTER", "SETSLOT", slot, "NODE", &to_id]);
    }
}

/// Two replicas on `cluster`, ready, with message limits out of the way.
async fn two_servers(cluster: &RedisCluster) -> (TestServer, TestServer) {
    let mut env = cluster.env();
    env.extend([
        ("CHAT__LIMITS__MESSAGE_BURST", "1000".to_string()),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "1000".to_string()),
    ]);
    let vars = as_vars(&env);
    let servers = (
        TestServer::start(&vars).await,
        TestServer::start(&vars).await,
    );
    for s in [&servers.0, &servers.1] {
        wait_readyz(s.admin, 200, Duration::from_secs(10)).await;
    }
    servers
}

async fn seqs(c: &mut Client, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = c.next_message().await;
        out.push(m["seq"].as_u64().expect("a seq"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_slot_moves_keeps_every_message_on_every_replica() {
    let cluster = RedisCluster::start();
    let (s1, s2) = two_servers(&cluster).await;
    let (mut a, _) = s1.join(&format!("name=a&room={ROOM}")).await;
    let (mut b, _) = s2.join(&format!("name=b&room={ROOM}")).await;
    for i in 1..=5 {
        a.say(&format!("before {i}")).await;
    }
    assert_eq!(seqs(&mut a, 5).await, vec![1, 2, 3, 4, 5]);
    assert_eq!(seqs(&mut b, 5).await, vec![1, 2, 3, 4, 5]);

    let key = format!("wschat:{{{ROOM}}}:log");
    let from = cluster.master_for_key(&key);
    let to = cluster
        .masters()
        .into_iter()
        .find(|&m| m != from)
        .expect("another master");
    let slot: u32 = redis::from_redis_value(cluster.query(from, &["CLUSTER", "KEYSLOT", &key]))
        .expect("a slot");
    move_slot(&cluster, &slot.to_string(), from, to);
    assert_eq!(cluster.master_for_key(&key), to, "the slot moved");

    // Publishing goes on on the new node (MOVED followed, the scripts loaded
    // there), and both replicas hear the room on its new node.
    for i in 1..=5 {
        b.say(&format!("after {i}")).await;
    }
    let want: Vec<u64> = (6..=10).collect();
    let got_a = tokio::time::timeout(Duration::from_secs(10), seqs(&mut a, 5)).await;
    let got_b = tokio::time::timeout(Duration::from_secs(10), seqs(&mut b, 5)).await;
    assert_eq!(got_a.ok(), Some(want.clone()), "replica 1 after the move");
    assert_eq!(got_b.ok(), Some(want), "replica 2 after the move");
    let (_, history) = s1.join(&format!("name=late&room={ROOM}")).await;
    assert_eq!(
        history["messages"].as_array().map(Vec::len),
        Some(10),
        "the log moved with the slot: {history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_of_a_cluster_gets_the_password_from_the_file() {
    let cluster = RedisCluster::start_with_password("s3cret-cluster");
    let (s1, s2) = two_servers(&cluster).await;
    // Rooms on every master: each of their nodes must have taken the password.
    let rooms = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];
    let masters: std::collections::BTreeSet<usize> = rooms
        .iter()
        .map(|r| cluster.master_for_key(&format!("wschat:{{{r}}}:log")))
        .collect();
    assert_eq!(masters.len(), 3, "the rooms spread over the masters");
    for room in rooms {
        let (mut a, _) = s1.join(&format!("name=a&room={room}")).await;
        let (mut b, _) = s2.join(&format!("name=b&room={room}")).await;
        a.say("hello").await;
        assert_eq!(b.next_message().await["text"], "hello", "{room}");
        assert_eq!(a.next_message().await["seq"], 1, "{room}");
    }
}
