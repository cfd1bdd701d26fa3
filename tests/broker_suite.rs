//! One broker test suite, run against every broker setup: the memory broker
//! (one server) and the Redis broker (two servers on one `redis-server`, on a
//! Redis Cluster of six nodes, and on a Sentinel-managed master, so every case
//! also crosses replicas). Each case asks for "replica 0" and "replica 1";
//! with one server both are the same. The join storm runs on real `ws-chat`
//! processes (one, or two sharing a Redis), where its timing is that of a
//! deployment.

mod common;
#[path = "broker_suite/identified.rs"]
mod identified;
#[path = "broker_suite/rooms.rs"]
mod rooms;

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use common::redis::RedisServer;
use common::redis_cluster::RedisCluster;
use common::redis_sentinel::RedisSentinel;
use common::storm::{self, Publisher};
use common::{wait_readyz, Client, Process, TestServer};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

/// Whatever Redis the servers of a case share (a [`RedisServer`],
/// [`RedisCluster`] or [`RedisSentinel`]): held until the case ends.
type Backing = Option<Box<dyn Any + Send>>;

/// The servers of one case, and the Redis they share, if any.
struct Cluster {
    servers: Vec<TestServer>,
    _redis: Backing,
}

impl Cluster {
    fn replica(&self, i: usize) -> &TestServer {
        &self.servers[i % self.servers.len()]
    }
}

type Env = Vec<(&'static str, String)>;

/// Limits high enough that the cases are not rate limited.
fn base_env() -> Env {
    vec![
        ("CHAT__LIMITS__MESSAGE_BURST", "1000".into()),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "1000".into()),
    ]
}

async fn start(env: &Env) -> TestServer {
    let vars = crate::common::redis::as_vars(env);
    TestServer::start(&vars).await
}

async fn memory(extra: Env) -> Cluster {
    let mut env = base_env();
    env.extend(extra);
    Cluster {
        servers: vec![start(&env).await],
        _redis: None,
    }
}

/// Two servers on the Redis that `redis_env` points to, held in `redis`.
async fn on_redis(redis_env: Env, redis: Box<dyn Any + Send>, extra: Env) -> Cluster {
    let mut env = base_env();
    env.extend(redis_env);
    env.extend(extra);
    let servers = vec![start(&env).await, start(&env).await];
    for s in &servers {
        wait_readyz(s.admin, 200, Duration::from_secs(10)).await;
    }
    Cluster {
        servers,
        _redis: Some(redis),
    }
}

async fn redis(extra: Env) -> Cluster {
    let r = RedisServer::start();
    on_redis(r.env(), Box::new(r), extra).await
}

async fn cluster(extra: Env) -> Cluster {
    let c = RedisCluster::start();
    on_redis(c.env(), Box::new(c), extra).await
}

async fn sentinel(extra: Env) -> Cluster {
    let s = RedisSentinel::start();
    on_redis(s.env(), Box::new(s), extra).await
}

/// Real `ws-chat` processes and the Redis they share, if any.
struct Procs {
    procs: Vec<Process>,
    _redis: Backing,
}

impl Procs {
    fn replica(&self, i: usize) -> &Process {
        &self.procs[i % self.procs.len()]
    }
}

/// The same setups as [`memory`], [`redis`], [`cluster`] and [`sentinel`],
/// as child processes.
mod processes {
    use super::{
        base_env, wait_readyz, Any, Backing, Duration, Env, Process, Procs, RedisCluster,
        RedisSentinel, RedisServer,
    };

    async fn launch(env: Env, n: usize, redis: Backing) -> Procs {
        let vars = crate::common::redis::as_vars(&env);
        let procs: Vec<Process> = (0..n).map(|_| Process::start(&vars, &[])).collect();
        for p in &procs {
            wait_readyz(p.admin_addr(), 200, Duration::from_secs(10)).await;
        }
        Procs {
            procs,
            _redis: redis,
        }
    }

    pub async fn memory(extra: Env) -> Procs {
        let mut env = base_env();
        env.extend(extra);
        launch(env, 1, None).await
    }

    /// Two processes on the Redis that `redis_env` points to.
    async fn on_redis(redis_env: Env, redis: Box<dyn Any + Send>, extra: Env) -> Procs {
        let mut env = base_env();
        env.extend(redis_env);
        env.extend(extra);
        launch(env, 2, Some(redis)).await
    }

    pub async fn redis(extra: Env) -> Procs {
        let r = RedisServer::start();
        on_redis(r.env(), Box::new(r), extra).await
    }

    pub async fn cluster(extra: Env) -> Procs {
        let c = RedisCluster::start();
        on_redis(c.env(), Box::new(c), extra).await
    }

    pub async fn sentinel(extra: Env) -> Procs {
        let s = RedisSentinel::start();
        on_redis(s.env(), Box::new(s), extra).await
    }
}

/// Reads `n` messages; panics on a timeout.
async fn messages(c: &mut Client, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(c.next_message().await);
    }
    out
}

/// Asserts that nothing but presence arrives for a moment.
async fn quiet(c: &mut Client) {
    use futures_util::StreamExt;
    let until = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, c.ws.next()).await {
        if let Ok(text) = msg.to_text() {
            assert!(!text.contains(r#""type":"message""#), "extra: {text}");
        }
    }
}

fn seqs(msgs: &[Value]) -> Vec<u64> {
    msgs.iter().filter_map(|m| m["seq"].as_u64()).collect()
}

async fn seq_order_and_exactly_once<F, Fut>(setup: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Cluster>,
{
    let c = setup(vec![]).await;
    let (mut a, _) = c.replica(0).join("name=a&room=eo").await;
    let (mut b, _) = c.replica(1).join("name=b&room=eo").await;
    let (mut d, _) = c.replica(0).join("name=d&room=eo").await;
    let send = |mut client: Client, tag: &'static str| async move {
        for i in 0..30 {
            client.say(&format!("{tag}{i}")).await;
        }
        client
    };
    let (ha, hb) = (tokio::spawn(send(a, "a")), tokio::spawn(send(b, "b")));
    a = ha.await.expect("sender a");
    b = hb.await.expect("sender b");
    for client in [&mut a, &mut b, &mut d] {
        let got = messages(client, 60).await;
        assert_eq!(seqs(&got), (1..=60).collect::<Vec<u64>>(), "seq order");
        for tag in ["a", "b"] {
            let mine: Vec<String> = got
                .iter()
                .filter_map(|m| m["text"].as_str())
                .filter(|t| t.starts_with(tag))
                .map(str::to_string)
                .collect();
            let sent: Vec<String> = (0..30).map(|i| format!("{tag}{i}")).collect();
            assert_eq!(mine, sent, "each sender's messages once, in order");
        }
        quiet(client).await;
    }
}

async fn history_is_capped_and_shared<F, Fut>(setup: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Cluster>,
{
    let c = setup(vec![("CHAT__ROOMS__HISTORY", "5".into())]).await;
    let (mut w, _) = c.replica(0).join("room=cap").await;
    for i in 1..=8 {
        w.say(&format!("m{i}")).await;
        assert_eq!(w.next_message().await["seq"], i);
    }
    let (_, history) = c.replica(1).join("room=cap").await;
    let msgs = history["messages"].as_array().expect("messages").clone();
    assert_eq!(
        seqs(&msgs),
        vec![4, 5, 6, 7, 8],
        "the newest 5, oldest first"
    );
    assert_eq!(msgs[0]["text"], "m4");
}

async fn since_and_epoch_resume<F, Fut>(setup: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Cluster>,
{
    let c = setup(vec![]).await;
    let (mut w, first) = c.replica(0).join("room=since").await;
    let epoch = first["epoch"].as_str().expect("epoch").to_string();
    for i in 1..=6 {
        w.say(&format!("m{i}")).await;
        w.next_message().await;
    }
    let r1 = c.replica(1);
    let (_, h) = r1.join(&format!("room=since&since=3&epoch={epoch}")).await;
    assert_eq!(h["epoch"], epoch.as_str(), "one epoch across replicas");
    assert_eq!(seqs(h["messages"].as_array().expect("messages")), [4, 5, 6]);
    let (_, h) = r1.join("room=since&since=3&epoch=some-other-life").await;
    assert_eq!(
        seqs(h["messages"].as_array().expect("messages")),
        [1, 2, 3, 4, 5, 6],
        "a stale epoch gets the full history"
    );
    let (_, h) = r1.join("room=since&since=5").await;
    assert_eq!(seqs(h["messages"].as_array().expect("messages")), [6]);
    let (_, h) = r1.join(&format!("room=since&since=6&epoch={epoch}")).await;
    assert_eq!(h["messages"], Value::Array(vec![]));
}

async fn presence_counts_every_replica<F, Fut>(setup: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Cluster>,
{
    let c = setup(vec![]).await;
    let (mut a, _) = c.replica(0).join("name=a&room=pr").await;
    assert_eq!(presence(&mut a).await, ("a joined".into(), 1));
    let (mut b, _) = c.replica(1).join("name=b&room=pr").await;
    assert_eq!(presence(&mut b).await, ("b joined".into(), 2));
    assert_eq!(presence(&mut a).await, ("b joined".into(), 2));
    b.bye().await;
    assert_eq!(presence(&mut a).await, ("b left".into(), 1));
}

/// The next presence event as (text, online).
async fn presence(c: &mut Client) -> (String, u64) {
    let p = c.next_of("presence").await;
    let text = p["message"].as_str().unwrap_or_default().to_string();
    (text, p["online"].as_u64().unwrap_or(u64::MAX))
}

const STORM_ROUNDS: usize = 5;
const STORM_JOINERS: usize = 60;

/// Many clients join a room on replica 1, which has no member there yet (a
/// reconnect storm, a rolling restart), while replica 0 publishes into it
/// steadily. Every joiner must hold every seq from its history's first one to
/// the room's last, once each, in order. Each round uses a fresh room; the
/// failures of all rounds are reported together.
async fn join_storm_loses_nothing<F, Fut>(setup: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Procs>,
{
    let c = setup(vec![
        ("CHAT__LIMITS__MESSAGE_BURST", "100000".into()),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "100000".into()),
        ("CHAT__LIMITS__IP_CONNECT_BURST", "1000".into()),
        // All 60 joiners come from 127.0.0.1 at once: more handshakes in
        // flight than one address may hold before its upgrades by default.
        ("CHAT__SERVER__IP_MAX_HTTP_CONNECTIONS", "1000".into()),
        // The pipe of a child's log is not read while it runs.
        ("CHAT__TELEMETRY__LOG_LEVEL", "error".into()),
    ])
    .await;
    let mut failed = Vec::new();
    for round in 1..=STORM_ROUNDS {
        if let Some(why) = storm_round(&c, &format!("storm{round}")).await {
            failed.push(format!("round {round}: {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {STORM_ROUNDS} rounds lost or doubled messages:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// One round; what went wrong, if anything.
async fn storm_round(c: &Procs, room: &str) -> Option<String> {
    let (a, b) = (c.replica(0), c.replica(1));
    let url = |p: &Process, name: &str| p.url(&format!("name={name}&room={room}"));
    let mut publisher = common::connect(&url(a, "pub"), Some(common::ORIGIN))
        .await
        .expect("publisher joins");
    publisher.next_of("history").await;
    let mut publisher = Publisher::start(publisher, Duration::from_millis(4));
    publisher.reached(30).await;
    let (joined_tx, mut joined) = mpsc::unbounded_channel();
    let (end_tx, end) = watch::channel(0);
    let joiners: Vec<_> = (0..STORM_JOINERS)
        .map(|i| {
            let url = url(b, &format!("j{i}"));
            tokio::spawn(storm::follow(url, joined_tx.clone(), end.clone()))
        })
        .collect();
    for n in 0..STORM_JOINERS {
        let got = tokio::time::timeout(common::WAIT * 2, joined.recv()).await;
        assert!(matches!(got, Ok(Some(_))), "{room}: only {n} joiners in");
    }
    // Traffic goes on after the storm, so that every joiner has live messages.
    let at = publisher.at();
    publisher.reached(at + 30).await;
    let last = publisher.stop().await;
    end_tx.send_replace(last);
    let mut bad = Vec::new();
    for (i, j) in joiners.into_iter().enumerate() {
        let run = j.await.expect("joiner task");
        if let Some(flaw) = storm::flaw(&run, last) {
            bad.push(format!("j{i}: {flaw}"));
        }
    }
    let first = bad.first()?;
    Some(format!(
        "{} of {STORM_JOINERS} joiners wrong (last seq {last}), e.g. {first}",
        bad.len()
    ))
}

macro_rules! broker_suite {
    ($($backend:ident),*) => {$(
        mod $backend {
            #[tokio::test]
            async fn seq_order_and_exactly_once() {
                super::seq_order_and_exactly_once(super::$backend).await;
            }
            #[tokio::test]
            async fn history_is_capped_and_shared() {
                super::history_is_capped_and_shared(super::$backend).await;
            }
            #[tokio::test]
            async fn since_and_epoch_resume() {
                super::since_and_epoch_resume(super::$backend).await;
            }
            #[tokio::test]
            async fn presence_counts_every_replica() {
                super::presence_counts_every_replica(super::$backend).await;
            }
            #[tokio::test]
            async fn deletions_reach_every_replica() {
                super::identified::deletions_reach_every_replica(super::$backend).await;
            }
            #[tokio::test]
            async fn members_list_every_replica_once() {
                super::identified::members_list_every_replica_once(super::$backend).await;
            }
            #[tokio::test]
            async fn many_rooms_at_once_are_all_carried() {
                super::rooms::many_rooms_at_once_are_all_carried(super::$backend).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn join_storm_loses_nothing() {
                super::join_storm_loses_nothing(super::processes::$backend).await;
            }
        }
    )*};
}

broker_suite!(memory, redis, cluster, sentinel);
