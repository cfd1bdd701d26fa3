//! The Redis broker when things go wrong: Redis killed and restarted with and
//! without persistence, connections killed under traffic (gap backfill), a
//! replica dying without cleanup (presence expiry), a room's subscription
//! failing at SUBSCRIBE or at the read after it, and AUTH from a file.

mod common;

use std::time::{Duration, Instant};

use common::redis::{RedisServer, TlsFiles};
use common::storm::{self, Publisher};
use common::{wait_readyz, Client, Process, Raw, TestServer};
use serde_json::Value;
use tokio::sync::watch;

async fn server(r: &RedisServer, extra: &[(&str, &str)]) -> TestServer {
    let env = r.env();
    let mut vars = common::redis::as_vars(&env);
    vars.extend([
        ("CHAT__LIMITS__MESSAGE_BURST", "10000"),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "10000"),
    ]);
    vars.extend_from_slice(extra);
    let s = TestServer::start(&vars).await;
    wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    s
}

/// The next `message` or `error` event (presence skipped).
async fn outcome(c: &mut Client) -> Value {
    loop {
        let v = c.next().await;
        if v["type"] == "message" || v["type"] == "error" {
            return v;
        }
    }
}

/// Sends until a message is accepted (every refusal must be `unavailable`);
/// returns it and how long that took.
async fn send_until_accepted(c: &mut Client, text: &str) -> (Value, Duration) {
    let started = Instant::now();
    let accepted = common::eventually(
        &format!("`{text}` to be accepted (seen: the last refusal)"),
        Duration::from_secs(10),
        async || {
            c.say(text).await;
            let v = outcome(c).await;
            if v["type"] == "message" {
                return Ok(v["message"].clone());
            }
            assert_eq!(v["code"], "unavailable", "{v}");
            Err(v)
        },
    )
    .await;
    (accepted, started.elapsed())
}

/// Kills Redis under two replicas, checks what clients and probes see during
/// the outage, restarts it and returns (time to first cross-replica delivery,
/// the two clients).
async fn outage(
    r: &mut RedisServer,
    a_srv: &TestServer,
    b_srv: &TestServer,
    room: &str,
) -> (Duration, Client, Client) {
    let (mut a, _) = a_srv.join(&format!("name=a&room={room}")).await;
    let (mut b, _) = b_srv.join(&format!("name=b&room={room}")).await;
    for i in 1..=5 {
        a.say(&format!("before{i}")).await;
        assert_eq!(a.next_message().await["seq"], i);
        assert_eq!(b.next_message().await["seq"], i);
    }
    r.kill();
    wait_readyz(a_srv.admin, 503, Duration::from_secs(3)).await;
    assert_eq!(common::http_get(a_srv.admin, "/healthz").await.0, 200);
    assert_eq!(a_srv.metric("wschat_broker_up").await, 0.0);
    for i in 0..3 {
        a.say(&format!("during{i}")).await;
        let v = outcome(&mut a).await;
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("error"), Some("unavailable")),
            "{v}"
        );
    }
    r.restart();
    let back = Instant::now();
    let (sent, _) = send_until_accepted(&mut a, "after").await;
    let got = b.next_message().await;
    assert_eq!(got["id"], sent["id"], "the other replica delivers it");
    let took = back.elapsed();
    wait_readyz(a_srv.admin, 200, Duration::from_secs(2)).await;
    assert!(a_srv.metric("wschat_broker_reconnects_total").await >= 1.0);
    (took, a, b)
}

#[tokio::test]
async fn redis_restart_without_persistence_gives_a_new_epoch_and_fanout_resumes() {
    let mut r = RedisServer::start();
    let (s1, s2) = (server(&r, &[]).await, server(&r, &[]).await);
    let (_, before) = s1.join("room=np").await;
    let old_epoch = before["epoch"].as_str().expect("epoch").to_string();
    let (took, mut a, mut b) = outage(&mut r, &s1, &s2, "np").await;
    assert!(
        took < Duration::from_secs(2),
        "fan-out resumed after {took:?}"
    );
    // The data is gone: a new epoch, seq from 1, and the old history is not
    // served as if it were still there.
    let (_, h) = s2.join(&format!("room=np&since=5&epoch={old_epoch}")).await;
    assert_ne!(h["epoch"], old_epoch.as_str());
    let texts: Vec<&str> = h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["after"]);
    a.say("next").await;
    for c in [&mut a, &mut b] {
        let m = c.next_message().await;
        assert_eq!(
            (m["text"].as_str(), m["seq"].as_u64()),
            (Some("next"), Some(2))
        );
    }
}

#[tokio::test]
async fn redis_restart_with_persistence_keeps_history_and_loses_no_accepted_message() {
    let mut r = RedisServer::start_persistent();
    let (s1, s2) = (server(&r, &[]).await, server(&r, &[]).await);
    let (_, first) = s1.join("room=keep").await;
    let epoch = first["epoch"].as_str().expect("epoch").to_string();
    let (took, mut a, mut b) = outage(&mut r, &s1, &s2, "keep").await;
    assert!(
        took < Duration::from_secs(2),
        "fan-out resumed after {took:?}"
    );
    for i in 7..=10 {
        a.say(&format!("m{i}")).await;
    }
    // b saw 1..=6 so far (5 before, "after"); the rest arrive in order.
    for seq in 7..=10 {
        assert_eq!(b.next_message().await["seq"], seq);
    }
    let (_, h) = s2.join(&format!("room=keep&since=0&epoch={epoch}")).await;
    assert_eq!(h["epoch"], epoch.as_str(), "same life of the history");
    let seqs: Vec<u64> = h["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn messages_missed_while_resubscribing_are_backfilled_exactly_once() {
    let r = RedisServer::start();
    let (s1, s2) = (server(&r, &[]).await, server(&r, &[]).await);
    let (mut a, _) = s1.join("name=a&room=gap").await;
    let (mut b, _) = s2.join("name=b&room=gap").await;
    // b reads as it goes, as a client does: one that stops reading under
    // this flood is a slow consumer (closed with 1013), not what is tested.
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        loop {
            let m = b.next_message().await;
            seqs.push(m["seq"].as_u64().expect("seq"));
            if m["text"] == "last" {
                return seqs;
            }
        }
    });
    let killer = {
        let port = r.port;
        tokio::task::spawn_blocking(move || {
            for _ in 0..6 {
                // The disruption's schedule: a kill every 120 ms while `a` sends.
                std::thread::sleep(Duration::from_millis(120));
                let _ = std::process::Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "CLIENT", "KILL", "TYPE", "pubsub"])
                    .output();
            }
        })
    };
    let (mut accepted, mut refused) = (0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1000) {
        a.say("x").await;
        match outcome(&mut a).await["type"].as_str() {
            Some("message") => accepted += 1,
            _ => refused += 1,
        }
    }
    killer.await.expect("killer");
    a.say("last").await;
    while outcome(&mut a).await["type"] != "message" {
        a.say("last").await;
    }
    accepted += 1;
    let seqs = reader.await.expect("b's reader");
    assert_eq!(
        seqs,
        (1..=accepted).collect::<Vec<_>>(),
        "{refused} refused"
    );
    assert!(
        accepted > 20,
        "too little traffic to mean anything: {accepted}"
    );
}

#[tokio::test]
async fn a_replica_that_dies_stops_being_counted() {
    let r = RedisServer::start();
    let env = r.env();
    let mut vars = common::redis::as_vars(&env);
    vars.push(("CHAT__BROKER__PRESENCE_TTL", "1s"));
    let doomed = Process::start(&vars, &[]);
    wait_readyz(doomed.admin_addr(), 200, Duration::from_secs(5)).await;
    let s = server(&r, &[("CHAT__BROKER__PRESENCE_TTL", "1s")]).await;
    let mut ghost = common::connect(&doomed.url("name=ghost&room=d"), Some(common::ORIGIN))
        .await
        .expect("joined the doomed replica");
    // Its own presence event comes back through Redis from the script that
    // counted it: from then on the other replica sees it too.
    assert_eq!(ghost.next_of("presence").await["online"], 1);
    let (mut b, _) = s.join("name=b&room=d").await;
    assert_eq!(b.next_of("presence").await["online"], 2);
    drop(doomed); // SIGKILL: no leave, no cleanup

    // A sleep, not a poll: the ghost's count expires 1 s (the TTL) after its
    // last refresh, which nothing announces; it is dropped at the next count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut c, _) = s.join("name=c&room=d").await;
    let p = c.next_of("presence").await;
    assert_eq!(p["online"], 2, "b and c only: {p}");
}

/// Redis stalls (DEBUG SLEEP) with a message in flight: the script runs
/// after the publish deadline, so the reply is lost but the message is not.
/// The sender gets its message and no `unavailable` (which would invite a
/// resend, and a duplicate); everyone gets it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_whose_reply_comes_too_late_is_not_reported_unavailable() {
    let r = RedisServer::start();
    let s = server(&r, &[]).await;
    let (mut ana, _) = s.join("room=late&name=ana").await;
    let (mut bob, _) = s.join("room=late&name=bob").await;
    // Loads the publish script: a first EVALSHA would need a second round
    // trip (NOSCRIPT, then EVAL) that the stall would cut off.
    ana.say("before").await;
    for c in [&mut ana, &mut bob] {
        assert_eq!(c.next_message().await["text"], "before");
    }
    let url = r.url();
    let mut probe = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("probe connection");
    let stall = r.stall(1.6);
    // DEBUG SLEEP shows it has begun only by silence: wait until a PING goes
    // unanswered for 100 ms (Redis answers one in well under a millisecond),
    // leaving 1.5 s of the stall, past the 1 s publish deadline.
    common::eventually(
        "Redis to stall in DEBUG SLEEP (seen: the PING's answer)",
        common::WAIT,
        async || {
            let ping = redis::cmd("PING");
            let answer = ping.query_async::<String>(&mut probe);
            match tokio::time::timeout(Duration::from_millis(100), answer).await {
                Err(_) => Ok(()),
                Ok(answer) => Err(answer),
            }
        },
    )
    .await;
    ana.say("late but not lost").await;
    stall.await.expect("stall");
    for c in [&mut ana, &mut bob] {
        let got = c.next_message().await;
        assert_eq!(got["text"], "late but not lost");
    }
    // Nothing else for ana: no error event, and no second copy for anyone.
    ana.say("after").await;
    for c in [&mut ana, &mut bob] {
        let next = loop {
            let v = c.next().await;
            if v["type"] != "presence" {
                break v;
            }
        };
        assert_eq!(next["type"], "message", "{next}");
        assert_eq!(next["message"]["text"], "after", "{next}");
    }
    assert_eq!(
        s.metric("wschat_broker_errors_total{op=\"publish\"}").await,
        0.0
    );
}

/// The real binary with `env` stays unready and its log says why: `cause`.
async fn unready_because(env: Vec<(&'static str, String)>, cause: &str) {
    let vars = common::redis::as_vars(&env);
    let p = Process::start(&vars, &[]);
    // A negative check, so a sleep: still unready after 1.5 s, long enough
    // for a working setup to be ready and for the first failed health probe
    // to have logged why.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(common::http_get(p.admin_addr(), "/readyz").await.0, 503);
    p.signal("TERM");
    let (_, logs) = tokio::task::spawn_blocking(move || p.wait_exit(Duration::from_secs(20)))
        .await
        .expect("wait");
    assert!(
        logs.contains("redis does not answer") && logs.contains(cause),
        "{logs}"
    );
}

/// rediss:// to a TLS-only Redis whose certificate a private CA signed:
/// chat goes through it with `broker.redis_ca_file`; without it the system's
/// CAs do not vouch for that certificate and the server stays unready.
#[tokio::test]
async fn rediss_with_a_private_ca_carries_chat_and_an_untrusted_certificate_is_not_ready() {
    let dir = tempfile::tempdir().expect("dir");
    let files = TlsFiles::generate(dir.path());
    let r = RedisServer::start_tls(&files, false);
    let ca = files.ca.to_string_lossy().to_string();
    let s = server(&r, &[("CHAT__BROKER__REDIS_CA_FILE", &ca)]).await;
    let (mut a, _) = s.join("room=tls").await;
    a.say("over tls").await;
    assert_eq!(a.next_message().await["text"], "over tls");
    assert_ne!(
        r.query(&["DBSIZE"]),
        redis::Value::Int(0),
        "the message went through Redis"
    );

    // Without the CA: unready, and the log says why.
    unready_because(r.env(), "invalid peer certificate").await;

    let plain = ws_chat::load_settings(&ws_chat::Sources::from_env([
        ("CHAT_TOKEN", "t"),
        ("CHAT__BROKER__KIND", "redis"),
        ("CHAT__BROKER__REDIS_CA_FILE", ca.as_str()),
    ]));
    let Err(err) = plain else {
        panic!("a CA file needs rediss://")
    };
    assert!(err.to_string().contains("broker.redis_ca_file"), "{err}");
}

/// A Redis that asks for client certificates (redis-server's default with
/// TLS): chat goes through with `broker.redis_client_cert_file`/`_key_file`;
/// without them the server stays unready and says why. Half a pair is a
/// settings error.
#[tokio::test]
async fn rediss_with_a_client_certificate_passes_where_redis_asks_for_one() {
    let dir = tempfile::tempdir().expect("dir");
    let files = TlsFiles::generate(dir.path());
    let r = RedisServer::start_tls(&files, true);
    let path = |p: &std::path::Path| p.to_string_lossy().to_string();
    let (ca, cert, key) = (
        path(&files.ca),
        path(&files.client_cert),
        path(&files.client_key),
    );
    let s = server(
        &r,
        &[
            ("CHAT__BROKER__REDIS_CA_FILE", &ca),
            ("CHAT__BROKER__REDIS_CLIENT_CERT_FILE", &cert),
            ("CHAT__BROKER__REDIS_CLIENT_KEY_FILE", &key),
        ],
    )
    .await;
    let (mut a, _) = s.join("room=mtls").await;
    a.say("with a client certificate").await;
    assert_eq!(a.next_message().await["text"], "with a client certificate");

    let mut env = r.env();
    env.push(("CHAT__BROKER__REDIS_CA_FILE", ca.clone()));
    unready_because(env, "CertificateRequired").await;

    let half = ws_chat::load_settings(&ws_chat::Sources::from_env([
        ("CHAT_TOKEN", "t"),
        ("CHAT__BROKER__KIND", "redis"),
        ("CHAT__BROKER__REDIS_URL", "rediss://127.0.0.1:1"),
        ("CHAT__BROKER__REDIS_CLIENT_CERT_FILE", cert.as_str()),
    ]));
    let Err(err) = half else {
        panic!("a client certificate needs its key")
    };
    assert!(
        err.to_string().contains("broker.redis_client_key_file"),
        "{err}"
    );
}

#[tokio::test]
async fn the_password_comes_from_a_file_and_a_wrong_one_is_not_ready() {
    let r = RedisServer::start_with_password("s3cret-pw");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("pw");
    std::fs::write(&file, "s3cret-pw\n").expect("write");
    let path = file.to_string_lossy().to_string();
    let s = server(&r, &[("CHAT__BROKER__REDIS_PASSWORD_FILE", &path)]).await;
    let (mut a, _) = s.join("room=pw").await;
    a.say("hi").await;
    assert_eq!(a.next_message().await["text"], "hi");

    let env = r.env();
    let mut vars = common::redis::as_vars(&env);
    vars.push(("CHAT__BROKER__REDIS_PASSWORD_FILE", ""));
    let anon = TestServer::start(&vars).await;
    // A negative check, so a sleep: still unready after 500 ms, more than the
    // right password needed to make the first server ready.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(common::http_get(anon.admin, "/readyz").await.0, 503);

    let missing = ws_chat::load_settings(&ws_chat::Sources::from_env([
        ("CHAT_TOKEN", "t"),
        ("CHAT__BROKER__KIND", "redis"),
        ("CHAT__BROKER__REDIS_PASSWORD_FILE", "/nonexistent/pw"),
    ]))
    .expect("settings");
    let err = ws_chat::App::new(missing, ws_chat::Sources::default())
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("broker.redis_password_file"),
        "{err}"
    );
}

/// A room whose subscription failed is subscribed again by the next joiner.
/// `failed` are joiners on `b` whose joins were refused with 1013; they
/// stay in the room (their close handshakes pending: `b` waits 30 s for them), so
/// the room keeps a local member throughout. Then a joiner on `b`, once its
/// join is taken, must get every message `a` publishes, history and live,
/// once each and in order.
async fn the_next_joiner_is_carried(a: &TestServer, b: &TestServer, room: &str, failed: Vec<Raw>) {
    let (p, _) = a.join(&format!("name=p&room={room}")).await;
    let mut publisher = Publisher::start(p, Duration::from_millis(5));
    let at = publisher.reached(1).await;
    let (end_tx, end) = watch::channel(0);
    let next = storm::follow_once_in(&b.url(&format!("name=y&room={room}")), &end).await;
    publisher.reached(at + 30).await;
    let last = publisher.stop().await;
    end_tx.send_replace(last);
    let run = next.await.expect("follower");
    assert_eq!(storm::flaw(&run, last), None, "{run:?}");
    drop(failed);
}

/// Joins `room` on `b` with a client that never answers a close: its session
/// stays in the room until the close timeout. Returns it after its 1013.
async fn refused_and_lingering(b: &TestServer, room: &str, name: &str) -> Raw {
    let mut x = Raw::connect(b.addr, &format!("name={name}&room={room}")).await;
    assert_eq!(
        x.close_code().await,
        Some(1013),
        "{name} on an unusable Redis"
    );
    x
}

/// SUBSCRIBE works but the reads after it fail (an ACL takes the scripts
/// from replica b's Redis user) while replica a publishes: every joiner on
/// b is closed with 1013, and once b can read again the next joiner gets
/// every message though the refused ones are still in the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_after_subscribe_is_retried_by_the_next_joiner() {
    let r = RedisServer::start();
    r.query(&["ACL", "SETUSER", "b", "on", ">b-pw", "~*", "&*", "+@all"]);
    let b_url = format!("redis://b:b-pw@127.0.0.1:{}", r.port);
    let a = server(&r, &[]).await;
    let linger = ("CHAT__SESSION__CLOSE_TIMEOUT", "30s");
    let b = server(&r, &[("CHAT__BROKER__REDIS_URL", &b_url), linger]).await;
    let (p, _) = a.join("name=p&room=acl").await;
    let mut publisher = Publisher::start(p, Duration::from_millis(5));
    publisher.reached(5).await;
    r.query(&["ACL", "SETUSER", "b", "-@scripting"]);
    // Ten joiners at once while b subscribes but cannot read: all 1013.
    let names: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
    let joins = names.iter().map(|n| refused_and_lingering(&b, "acl", n));
    let failed = futures_util::future::join_all(joins).await;
    let failures = b
        .metric("wschat_broker_errors_total{op=\"subscribe\"}")
        .await;
    assert!(
        failures >= 1.0,
        "the attempts failed at the read: {failures}"
    );
    // Traffic that b, subscribed but without a baseline, must not hold forever.
    let at = publisher.at();
    publisher.reached(at + 20).await;
    publisher.stop().await;
    r.query(&["ACL", "SETUSER", "b", "+@all"]);
    the_next_joiner_is_carried(&a, &b, "acl", failed).await;
}

/// Redis is down when the first joiner on replica b arrives: its SUBSCRIBE
/// fails and it is closed with 1013. Once Redis is back, the next joiner on
/// b (the refused one still in the room) is carried: it gets every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_subscribe_is_retried_by_the_next_joiner() {
    let mut r = RedisServer::start();
    let a = server(&r, &[]).await;
    let b = server(&r, &[("CHAT__SESSION__CLOSE_TIMEOUT", "30s")]).await;
    r.kill();
    wait_readyz(b.admin, 503, Duration::from_secs(3)).await;
    let failed = vec![refused_and_lingering(&b, "down", "x").await];
    r.restart();
    for s in [&a, &b] {
        wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    }
    the_next_joiner_is_carried(&a, &b, "down", failed).await;
}
