//! A rolling restart without loss: two `ws-chat` processes on one
//! `redis-server`, clients publishing continuously in one room; one process
//! gets SIGTERM and drains with 1001; its clients reconnect to the other with
//! `since` and `epoch`. Afterwards every client holds every accepted message
//! exactly once, in seq order, with no gaps.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::redis::RedisServer;
use common::{connect, wait_readyz, Client, Process, ORIGIN};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{Barrier, Notify};
use tokio_tungstenite::tungstenite::Message;

/// What one client ended up with.
struct Seen {
    name: String,
    seqs: Vec<u64>,
    ids: Vec<String>,
    epochs: Vec<String>,
    reconnects: u32,
}

async fn join(url: &str, seen: &mut Seen) -> Client {
    let mut c = connect(url, Some(ORIGIN))
        .await
        .unwrap_or_else(|s| panic!("refused with {s}"));
    c.next_of("system").await;
    let h = c.next_of("history").await;
    seen.epochs
        .push(h["epoch"].as_str().unwrap_or_default().to_string());
    for m in h["messages"].as_array().cloned().unwrap_or_default() {
        record(seen, &m);
    }
    c
}

fn record(seen: &mut Seen, m: &Value) {
    seen.seqs.push(m["seq"].as_u64().unwrap_or(0));
    seen.ids
        .push(m["id"].as_str().unwrap_or_default().to_string());
}

/// Joins `first`, sends every 25 ms until `stop`, follows a 1001 to `survivor`
/// with `since`/`epoch` (counting the move in `moved`), then reads until the
/// room is quiet.
async fn chat(
    name: String,
    first: String,
    survivor: String,
    ready: Arc<Barrier>,
    stop: Arc<Notify>,
    moved: Arc<AtomicU32>,
) -> Seen {
    let mut seen = Seen {
        name: name.clone(),
        seqs: Vec::new(),
        ids: Vec::new(),
        epochs: Vec::new(),
        reconnects: 0,
    };
    let mut c = join(&first, &mut seen).await;
    ready.wait().await;
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    let stopped = stop.notified();
    tokio::pin!(stopped);
    let mut sending = true;
    let mut n = 0;
    loop {
        // A bounded receive: nothing for this long ends the client (700 ms
        // once it stopped sending: the room is quiet).
        let quiet = tokio::time::sleep(Duration::from_millis(if sending { 5000 } else { 700 }));
        tokio::select! {
            () = &mut stopped, if sending => sending = false,
            _ = tick.tick(), if sending => {
                n += 1;
                let text = serde_json::json!({"type": "message", "text": format!("{name}-{n}")});
                let _ = c.ws.send(Message::text(text.to_string())).await;
            }
            frame = c.ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or_default();
                    if v["type"] == "message" {
                        record(&mut seen, &v["message"]);
                    }
                    assert_ne!(v["type"], "error", "{name}: {v}");
                }
                Some(Ok(Message::Close(f))) => {
                    assert_eq!(f.map(|f| u16::from(f.code)), Some(1001), "{name}");
                    let last = seen.seqs.last().copied().unwrap_or(0);
                    let epoch = seen.epochs.last().cloned().unwrap_or_default();
                    let url = format!("{survivor}&since={last}&epoch={epoch}");
                    seen.reconnects += 1;
                    c = join(&url, &mut seen).await;
                    moved.fetch_add(1, Ordering::SeqCst);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{name}: {e}"),
                None => panic!("{name}: closed without a close frame"),
            },
            () = quiet => break,
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_one_replica_loses_nothing() {
    let r = RedisServer::start();
    let redis_env = r.env();
    let mut env = common::redis::as_vars(&redis_env);
    env.extend([
        ("CHAT__SHUTDOWN__DRAIN_WINDOW", "1s"),
        ("CHAT__LIMITS__MESSAGE_BURST", "1000"),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "1000"),
    ]);
    let leaving = Process::start(&env, &[]);
    let staying = Process::start(&env, &[]);
    for p in [&leaving, &staying] {
        wait_readyz(p.admin_addr(), 200, Duration::from_secs(5)).await;
    }
    let clients = 6;
    let ready = Arc::new(Barrier::new(clients + 1));
    let stop = Arc::new(Notify::new());
    let moved = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let name = format!("c{i}");
            let first = if i % 2 == 0 { &leaving } else { &staying };
            let first = first.url(&format!("name={name}&room=roll"));
            let survivor = staying.url(&format!("name={name}&room=roll"));
            tokio::spawn(chat(
                name,
                first,
                survivor,
                ready.clone(),
                stop.clone(),
                moved.clone(),
            ))
        })
        .collect();
    ready.wait().await;
    // Traffic is the point: 800 ms of it before the drain...
    tokio::time::sleep(Duration::from_millis(800)).await;
    leaving.signal("TERM");
    common::eventually(
        "the clients of the drained replica to move over (seen: how many did)",
        common::WAIT,
        async || match moved.load(Ordering::SeqCst) {
            n if n >= 3 => Ok(()),
            n => Err(n),
        },
    )
    .await;
    // ...and 800 ms of it on the survivor alone after the move.
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.notify_waiters();
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("client task"));
    }
    let (code, _) = tokio::task::spawn_blocking(move || leaving.wait_exit(Duration::from_secs(10)))
        .await
        .expect("wait");
    assert_eq!(code, Some(0), "the drained replica exits cleanly");

    let total = all.iter().map(|s| s.seqs.len()).max().unwrap_or(0) as u64;
    for s in &all {
        let want: Vec<u64> = (1..=total).collect();
        assert_eq!(s.seqs, want, "{}: every message once, in order", s.name);
        let mut ids = s.ids.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len() as u64, total, "{}: distinct ids", s.name);
        assert!(
            s.epochs.windows(2).all(|w| w[0] == w[1]),
            "{}: one epoch",
            s.name
        );
    }
    let moved: u32 = all.iter().map(|s| s.reconnects).sum();
    assert_eq!(
        moved, 3,
        "the three clients of the drained replica moved over"
    );
}
