//! The clients of the failover tests: members of a room that record every
//! message (with the connection and epoch it came in), resume with `since`
//! and `epoch` when the server ends their connection or the test asks, and
//! (the publisher) send steadily; plus the checks on what they recorded and
//! a `/readyz` watcher.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, connect, http_get, ORIGIN};

/// One message as a member received it.
#[derive(Debug, Clone)]
pub struct Got {
    /// Which of the member's connections (0, 1, ...).
    pub conn: u32,
    pub epoch: String,
    pub seq: u64,
    pub id: String,
    pub text: String,
    pub at: Instant,
}

/// What one member did and saw.
#[derive(Debug, Default)]
pub struct Log {
    pub got: Vec<Got>,
    /// Connections that got their `history`.
    pub joined: u32,
    /// How each connection ended (a refusal, a close, a rejoin the test asked).
    pub closes: Vec<String>,
    pub errors: Vec<Value>,
    /// The publisher's sends: text and when.
    pub sent: Vec<(String, Instant)>,
}

/// What the test wants of a member.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctl {
    pub sending: bool,
    /// Bumped to make the member close and resume with `since`/`epoch`.
    pub rejoin: u32,
    pub done: bool,
}

/// A member's task, what it recorded, and the handle the test steers it by.
pub struct Member {
    pub name: String,
    pub server: &'static str,
    pub log: Arc<Mutex<Log>>,
    pub ctl: watch::Sender<Ctl>,
    pub task: JoinHandle<()>,
}

impl Member {
    pub fn start(name: &str, server: &'static str, base: String, sending: bool) -> Member {
        let log = Arc::new(Mutex::new(Log::default()));
        let (ctl, rx) = watch::channel(Ctl {
            sending,
            ..Ctl::default()
        });
        let task = tokio::spawn(run_member(name.to_string(), base, rx, log.clone()));
        Member {
            name: name.to_string(),
            server,
            log,
            ctl,
            task,
        }
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().expect("member log")
    }
}

/// Joins `base` (a URL with name and room), sends `<name>-<n>` every 20 ms
/// while told to, records everything, and resumes with `since` (the last seq
/// it saw) and `epoch` (its last history's) whenever the server ends the
/// connection or the test asks for a rejoin.
async fn run_member(
    name: String,
    base: String,
    mut ctl: watch::Receiver<Ctl>,
    log: Arc<Mutex<Log>>,
) {
    let mut conn = 0u32;
    let mut rejoin_seen = 0;
    let mut n = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let url = {
            let l = log.lock().expect("log");
            // `since` and the epoch of the connection that seq came from.
            match l.got.last() {
                Some(last) => format!("{base}&since={}&epoch={}", last.seq, last.epoch),
                None => base.clone(),
            }
        };
        let mut c = match connect(&url, Some(ORIGIN)).await {
            Ok(c) => c,
            Err(status) => {
                log.lock()
                    .expect("log")
                    .closes
                    .push(format!("refused {status}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut epoch: Option<String> = None;
        let ended = loop {
            let now = *ctl.borrow();
            if now.done {
                let _ = c.ws.close(None).await;
                return;
            }
            if now.rejoin != rejoin_seen {
                rejoin_seen = now.rejoin;
                let _ = c.ws.close(None).await;
                break "rejoin asked".to_string();
            }
            tokio::select! {
                _ = ctl.changed() => {}
                _ = tick.tick(), if now.sending && epoch.is_some() => {
                    n += 1;
                    let text = format!("{name}-{n}");
                    let frame = serde_json::json!({"type": "message", "text": text});
                    log.lock().expect("log").sent.push((text, Instant::now()));
                    if c.ws.send(Message::text(frame.to_string())).await.is_err() {
                        break "send failed".to_string();
                    }
                }
                frame = c.ws.next() => match frame {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(&t).expect("JSON event");
                        let mut l = log.lock().expect("log");
                        match v["type"].as_str() {
                            Some("history") => {
                                let e = v["epoch"].as_str().unwrap_or_default().to_string();
                                for m in v["messages"].as_array().into_iter().flatten() {
                                    l.got.push(got(conn, &e, m));
                                }
                                epoch = Some(e);
                                l.joined += 1;
                            }
                            Some("message") => {
                                let e = epoch.clone().unwrap_or_default();
                                l.got.push(got(conn, &e, &v["message"]));
                            }
                            Some("error") => l.errors.push(v),
                            _ => {}
                        }
                    }
                    Some(Ok(Message::Close(f))) => {
                        break format!("closed {:?}", f.map(|f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("error {e}"),
                    None => break "ended".to_string(),
                },
            }
        };
        log.lock().expect("log").closes.push(ended);
        conn += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn got(conn: u32, epoch: &str, m: &Value) -> Got {
    Got {
        conn,
        epoch: epoch.to_string(),
        seq: m["seq"].as_u64().unwrap_or(0),
        id: m["id"].as_str().unwrap_or_default().to_string(),
        text: m["text"].as_str().unwrap_or_default().to_string(),
        at: Instant::now(),
    }
}

/// The publisher's first message sent after `after` that came back accepted.
pub fn first_accepted_after(publisher: &Member, after: Instant) -> Option<Got> {
    let l = publisher.log();
    let sent: HashSet<&str> = l
        .sent
        .iter()
        .filter(|(_, at)| *at > after)
        .map(|(t, _)| t.as_str())
        .collect();
    l.got
        .iter()
        .filter(|g| sent.contains(g.text.as_str()))
        .min_by_key(|g| g.at)
        .cloned()
}

/// Waits until the publisher has `n` more of its messages back than now.
pub async fn more_accepted(publisher: &Member, n: usize) {
    let mine = |p: &Member| {
        let prefix = format!("{}-", p.name);
        let l = p.log();
        l.got
            .iter()
            .filter(|g| g.text.starts_with(&prefix))
            .map(|g| g.id.clone())
            .collect::<HashSet<_>>()
            .len()
    };
    let want = mine(publisher) + n;
    common::eventually(
        &format!("{n} more messages accepted (seen: how many)"),
        Duration::from_secs(10),
        async || match mine(publisher) {
            got if got >= want => Ok(()),
            got => Err(got),
        },
    )
    .await;
}

/// Polls `/readyz` at `admin` every 25 ms until `stop`; returns each change
/// of status with when it was seen (since `since`).
pub async fn watch_readyz(
    admin: SocketAddr,
    since: Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<(Duration, u16)> {
    let mut seen: Vec<(Duration, u16)> = Vec::new();
    while !*stop.borrow() {
        let status = http_get(admin, "/readyz").await.0;
        if seen.last().map(|s| s.1) != Some(status) {
            seen.push((since.elapsed(), status));
        }
        let _ = tokio::time::timeout(Duration::from_millis(25), stop.changed()).await;
    }
    seen
}

/// What is wrong with a member's resumes: after each new connection, the
/// messages must come in strictly increasing `seq`, and (same epoch) after the
/// `since` it sent.
pub fn resume_flaws(name: &str, got: &[Got]) -> Vec<String> {
    let mut flaws = Vec::new();
    let last_conn = got.last().map_or(0, |g| g.conn);
    for conn in 1..=last_conn {
        let seg: Vec<&Got> = got.iter().filter(|g| g.conn == conn).collect();
        let Some(first) = seg.first() else { continue };
        if let Some(prev) = got.iter().rfind(|g| g.conn < conn) {
            if first.epoch == prev.epoch && first.seq <= prev.seq {
                flaws.push(format!(
                    "{name}: connection {conn} resumed with since={} but got seq {} first",
                    prev.seq, first.seq
                ));
            }
        }
        let seqs: Vec<u64> = seg.iter().map(|g| g.seq).collect();
        if !seqs.windows(2).all(|w| w[0] < w[1]) {
            flaws.push(format!(
                "{name}: connection {conn} got seqs out of order: {seqs:?}"
            ));
        }
    }
    flaws
}

/// The seqs of messages a member got twice. A connection whose history has a
/// new epoch starts over (the protocol has the client forget the old ids).
pub fn twice(got: &[Got]) -> Vec<u64> {
    let mut ids = HashSet::new();
    let mut at: Option<(u32, &str)> = None;
    let mut twice = Vec::new();
    for g in got {
        if let Some((conn, epoch)) = at {
            if g.conn != conn && g.epoch != epoch {
                ids.clear();
            }
        }
        at = Some((g.conn, &g.epoch));
        if !ids.insert(&g.id) {
            twice.push(g.seq);
        }
    }
    twice
}
