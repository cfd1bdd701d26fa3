//! Redis failover under ws-chat: two servers on a Redis Cluster (and on a
//! Sentinel setup), members of one room on each, a publisher sending steadily;
//! the master that holds the room is SIGKILLed. Publishing and `/readyz` must
//! recover within 15 s, a client that resumes with `since` gets each message
//! once in `seq` order, and every message accepted after the failover reaches
//! every member on both servers. Also the harnesses alone (no ws-chat): a
//! cluster and a sentinel setup form and fail over without losing a write
//! their replica acknowledged; the cluster takes the old master back.

mod common;

#[path = "redis_failover/members.rs"]
mod members;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::redis::as_vars;
use common::redis_cluster::RedisCluster;
use common::redis_sentinel::RedisSentinel;
use common::{wait_readyz, TestServer};
use members::{
    first_accepted_after, more_accepted, resume_flaws, twice, watch_readyz, Got, Member,
};
use tokio::sync::watch;

/// How long publishing and `/readyz` may take to recover after the kill.
const RECOVERY: Duration = Duration::from_secs(15);
const ROOM: &str = "failover";

fn text(v: redis::Value) -> String {
    redis::from_redis_value(v).expect("a text reply")
}

#[tokio::test]
async fn harness_cluster_forms_fails_over_and_takes_the_old_master_back() {
    let mut c = RedisCluster::start();
    println!("cluster formed in {:?}", c.formed_in);
    assert_eq!(c.masters().len(), 3, "three masters");
    let key = "wschat:{harness}:log";
    let old = c.master_for_key(key);
    let replies = c.query_all(old, &[&["RPUSH", key, "before"], &["WAIT", "1", "2000"]]);
    let acked: i64 = redis::from_redis_value_ref(&replies[1]).expect("WAIT");
    assert_eq!(acked, 1, "the replica has the write before the kill");
    c.kill(old);
    let took = c.wait_promoted(old).await;
    println!("cluster: node {old}'s slots served elsewhere {took:?} after the kill");
    let new = c.master_for_key(key);
    assert_ne!(new, old);
    let kept: Vec<String> =
        redis::from_redis_value(c.query(new, &["LRANGE", key, "0", "-1"])).expect("LRANGE");
    assert_eq!(
        kept,
        ["before"],
        "the promoted replica (node {new}) has the data; it sees:\n{}",
        text(c.query(new, &["CLUSTER", "NODES"]))
    );
    c.query(new, &["RPUSH", key, "after"]);
    c.restart(old);
    let took = c.wait_healthy().await;
    println!("cluster: node {old} back as a replica {took:?} after its restart");
    assert_eq!(
        c.master_for_key(key),
        new,
        "the slots stay on the new master"
    );
    let info = text(c.query(old, &["INFO", "replication"]));
    assert!(info.contains("role:slave"), "{info}");
}

#[tokio::test]
async fn harness_sentinel_forms_and_fails_over() {
    let mut s = RedisSentinel::start();
    println!("sentinel setup formed in {:?}", s.formed_in);
    let old = s.master_addr();
    let replies = s.query_all(
        old,
        &[
            &["SET", "wschat:{harness}:meta", "before"],
            &["WAIT", "1", "2000"],
        ],
    );
    let acked: i64 = redis::from_redis_value_ref(&replies[1]).expect("WAIT");
    assert_eq!(acked, 1, "the replica has the write before the kill");
    assert_eq!(s.kill_master(), old);
    let (new, took) = s.wait_failover(old).await;
    println!("sentinel: master {old} replaced by {new} {took:?} after the kill");
    assert_ne!(new, old);
    assert_eq!(s.master_addr(), new);
    let kept = text(s.query(new, &["GET", "wschat:{harness}:meta"]));
    assert_eq!(kept, "before", "the promoted replica has the data");
    s.query(new, &["SET", "wschat:{harness}:meta", "after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_killed_under_traffic_loses_nothing_accepted_after() {
    failover(Ha::Cluster(RedisCluster::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_master_killed_under_traffic_loses_nothing_accepted_after() {
    failover(Ha::Sentinel(RedisSentinel::start())).await;
}

/// The Redis under test.
enum Ha {
    Cluster(RedisCluster),
    Sentinel(RedisSentinel),
}

impl Ha {
    fn name(&self) -> &'static str {
        match self {
            Ha::Cluster(_) => "cluster",
            Ha::Sentinel(_) => "sentinel",
        }
    }

    fn formed_in(&self) -> Duration {
        match self {
            Ha::Cluster(c) => c.formed_in,
            Ha::Sentinel(s) => s.formed_in,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Ha::Cluster(c) => c.env(),
            Ha::Sentinel(s) => s.env(),
        }
    }

    /// Kills the master holding `room`; returns what identifies it (cluster:
    /// the node index; sentinel: the port).
    fn kill_room_master(&mut self, room: &str) -> usize {
        match self {
            Ha::Cluster(c) => {
                let node = c.master_for_key(&format!("wschat:{{{room}}}:log"));
                c.kill(node);
                node
            }
            Ha::Sentinel(s) => s.kill_master() as usize,
        }
    }

    /// Waits until Redis itself replaced the killed master; how long it took.
    async fn wait_replaced(&self, killed: usize) -> Duration {
        match self {
            Ha::Cluster(c) => c.wait_promoted(killed).await,
            Ha::Sentinel(s) => s.wait_failover(killed as u16).await.1,
        }
    }
}

async fn failover(mut ha: Ha) {
    let what = ha.name();
    println!("{what}: formed in {:?}", ha.formed_in());
    let mut env = ha.env();
    env.extend([
        ("CHAT__LIMITS__MESSAGE_BURST", "10000".to_string()),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "10000".to_string()),
        ("CHAT__LIMITS__IP_CONNECT_BURST", "1000".to_string()),
    ]);
    let vars = as_vars(&env);
    let s1 = TestServer::start(&vars).await;
    let s2 = TestServer::start(&vars).await;
    for s in [&s1, &s2] {
        wait_readyz(s.admin, 200, Duration::from_secs(10)).await;
    }
    let url = |s: &TestServer, name: &str| s.url(&format!("name={name}&room={ROOM}"));
    let members = [
        Member::start("pub", "s1", url(&s1, "pub"), true),
        Member::start("a1", "s1", url(&s1, "a1"), false),
        Member::start("a2", "s1", url(&s1, "a2"), false),
        Member::start("b1", "s2", url(&s2, "b1"), false),
        Member::start("b2", "s2", url(&s2, "b2"), false),
    ];
    let publisher = &members[0];
    common::eventually(
        "every member to join (seen: those not in yet)",
        common::WAIT,
        async || {
            let out: Vec<&str> = members
                .iter()
                .filter(|m| m.log().joined == 0)
                .map(|m| m.name.as_str())
                .collect();
            if out.is_empty() {
                Ok(())
            } else {
                Err(out)
            }
        },
    )
    .await;
    more_accepted(publisher, 30).await;

    let killed_at = Instant::now();
    let killed = ha.kill_room_master(ROOM);
    let (stop_tx, stop) = watch::channel(false);
    let monitors = [("s1", s1.admin), ("s2", s2.admin)]
        .map(|(n, a)| (n, tokio::spawn(watch_readyz(a, killed_at, stop.clone()))));
    let redis_took = ha.wait_replaced(killed).await;
    println!("{what}: Redis replaced the killed master {redis_took:?} after the kill");

    // (a) publishing works again, and both servers are ready, within 15 s.
    let first_ok = common::eventually(
        &format!("a message sent after the kill to be accepted within {RECOVERY:?} of it"),
        RECOVERY.saturating_sub(killed_at.elapsed()),
        async || first_accepted_after(publisher, killed_at).ok_or(()),
    )
    .await;
    let publish_back = first_ok.at - killed_at;
    println!(
        "{what}: first message accepted after the kill: {publish_back:?} (seq {})",
        first_ok.seq
    );
    for s in [&s1, &s2] {
        wait_readyz(s.admin, 200, RECOVERY.saturating_sub(killed_at.elapsed())).await;
    }
    println!(
        "{what}: both /readyz 200 by {:?} after the kill",
        killed_at.elapsed()
    );

    // Traffic after the failover; then a1 and b1 resume with `since`.
    more_accepted(publisher, 25).await;
    for m in members.iter().filter(|m| m.name == "a1" || m.name == "b1") {
        m.ctl.send_modify(|c| c.rejoin += 1);
    }
    common::eventually(
        "a1 and b1 to resume (seen: their joins)",
        common::WAIT,
        async || {
            let joins: Vec<u32> = members[1..]
                .iter()
                .filter(|m| m.name.ends_with('1'))
                .map(|m| m.log().joined)
                .collect();
            if joins.iter().all(|&j| j >= 2) {
                Ok(())
            } else {
                Err(joins)
            }
        },
    )
    .await;
    more_accepted(publisher, 25).await;
    publisher.ctl.send_modify(|c| c.sending = false);
    stop_tx.send_replace(true);
    for (name, m) in monitors {
        let seen = m.await.expect("readyz monitor");
        let text: Vec<String> = seen.iter().map(|(t, s)| format!("{s} at {t:?}")).collect();
        println!("{what}: {name} /readyz after the kill: {}", text.join(", "));
    }

    // Every message accepted from the first one after the kill on reaches
    // every member, on both servers.
    let accepted: HashMap<String, Got> = {
        let l = publisher.log();
        let prefix = format!("{}-", publisher.name);
        l.got
            .iter()
            .filter(|g| g.text.starts_with(&prefix) && g.at >= first_ok.at)
            .map(|g| (g.id.clone(), g.clone()))
            .collect()
    };
    common::eventually(
        "every member to hold every message accepted after the failover \
         (seen: member, server, how many missing, the first missing seq)",
        Duration::from_secs(10),
        async || {
            let mut short = Vec::new();
            for m in &members {
                let l = m.log();
                let ids: HashSet<&str> = l.got.iter().map(|g| g.id.as_str()).collect();
                let missing: Vec<u64> = accepted
                    .values()
                    .filter(|g| !ids.contains(g.id.as_str()))
                    .map(|g| g.seq)
                    .collect();
                if !missing.is_empty() {
                    let first = missing.iter().min().copied();
                    short.push((m.name.clone(), m.server, missing.len(), first));
                }
            }
            if short.is_empty() {
                Ok(())
            } else {
                Err(short)
            }
        },
    )
    .await;

    // Accepted before the kill: a member without one lost it in the failover
    // (printed, not asserted: replication to the replica is asynchronous).
    let before: Vec<(String, u64)> = {
        let prefix = format!("{}-", publisher.name);
        let l = publisher.log();
        l.got
            .iter()
            .filter(|g| g.text.starts_with(&prefix) && g.at < killed_at)
            .map(|g| (g.id.clone(), g.seq))
            .collect()
    };
    let mut flaws = Vec::new();
    for m in &members {
        m.ctl.send_modify(|c| c.done = true);
    }
    for m in members {
        let Member {
            name,
            server,
            task,
            log,
            ..
        } = m;
        tokio::time::timeout(common::WAIT, task)
            .await
            .expect("member stops")
            .expect("member task");
        let l = log.lock().expect("log");
        let twice = twice(&l.got);
        if !twice.is_empty() {
            flaws.push(format!("{name} ({server}): got seqs {twice:?} twice"));
        }
        flaws.extend(resume_flaws(&name, &l.got));
        let has: HashSet<&str> = l.got.iter().map(|g| g.id.as_str()).collect();
        let lost_before: Vec<u64> = before
            .iter()
            .filter(|(id, _)| !has.contains(id.as_str()))
            .map(|(_, seq)| *seq)
            .collect();
        let epochs: HashSet<&str> = l.got.iter().map(|g| g.epoch.as_str()).collect();
        println!(
            "{what}: {name} ({server}): {} messages, {} joins, {} epochs, ends {:?}, {} errors{}",
            l.got.len(),
            l.joined,
            epochs.len(),
            l.closes,
            l.errors.len(),
            if lost_before.is_empty() {
                String::new()
            } else {
                format!(", lost {lost_before:?}")
            }
        );
    }
    assert!(flaws.is_empty(), "{what}:\n{}", flaws.join("\n"));
    println!(
        "{what}: summary: formed {:?}, Redis failover {redis_took:?}, \
         first accepted publish {publish_back:?} after the kill, {} messages accepted after it",
        ha.formed_in(),
        accepted.len()
    );
}
