//! Join storms under traffic: a publisher that sends steadily into a room,
//! joiners that record every `seq` they get (history and live), and the
//! check that each joiner holds one contiguous run, each `seq` once.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{connect, Client, ORIGIN, WAIT};

/// Sends a message every `every` and follows its own echoes.
pub struct Publisher {
    echoed: watch::Receiver<u64>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<u64>,
}

impl Publisher {
    /// Starts sending on `c` (joined already, to a room only it publishes in).
    pub fn start(mut c: Client, every: Duration) -> Publisher {
        let (echo_tx, echoed) = watch::channel(0);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut sent, mut acked, mut last) = (0u64, 0u64, 0u64);
            let mut sending = true;
            while sending || acked < sent {
                tokio::select! {
                    _ = &mut stopped, if sending => sending = false,
                    _ = tick.tick(), if sending => {
                        sent += 1;
                        c.say(&format!("p{sent}")).await;
                    }
                    v = c.next() => match v["type"].as_str() {
                        Some("message") => {
                            acked += 1;
                            last = v["message"]["seq"].as_u64().unwrap_or(0);
                            echo_tx.send_replace(last);
                        }
                        Some("error") => panic!("publisher refused: {v}"),
                        _ => {}
                    },
                }
            }
            last
        });
        Publisher {
            echoed,
            stop: Some(stop),
            task,
        }
    }

    /// Waits until the room's `seq` reached `seq`; returns where it is.
    pub async fn reached(&mut self, seq: u64) -> u64 {
        let waited = tokio::time::timeout(WAIT, self.echoed.wait_for(|s| *s >= seq)).await;
        match waited {
            Ok(Ok(at)) => *at,
            _ => panic!("the publisher did not reach seq {seq} within {WAIT:?}"),
        }
    }

    /// The last seq it saw echoed.
    pub fn at(&self) -> u64 {
        *self.echoed.borrow()
    }

    /// Stops sending; returns the room's last `seq` once every message sent
    /// has come back.
    pub async fn stop(mut self) -> u64 {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("publisher task")
    }
}

/// What one joiner got.
#[derive(Debug, Default)]
pub struct Run {
    /// The seqs of its `history`.
    pub history: Vec<u64>,
    /// The seqs of the live messages after it, in arrival order.
    pub live: Vec<u64>,
    /// The close code, if the server closed it.
    pub closed: Option<u16>,
}

/// Joins at `url` and says on `joined` whether it got its history (`true`)
/// or was closed first (`false`, the code in [`Run::closed`]); then records
/// live messages until it has seen `end` (set once the publisher stopped) or
/// nothing comes for 3 s after that.
pub async fn follow(
    url: String,
    joined: mpsc::UnboundedSender<bool>,
    end: watch::Receiver<u64>,
) -> Run {
    let mut run = Run::default();
    let mut c = connect(&url, Some(ORIGIN))
        .await
        .unwrap_or_else(|s| panic!("join refused with {s}"));
    let mut in_history = true;
    let mut quiet = Duration::ZERO;
    let step = Duration::from_millis(100);
    let started = tokio::time::Instant::now();
    loop {
        let target = *end.borrow();
        let last = run.live.last().or(run.history.last()).copied().unwrap_or(0);
        if (target > 0 && last >= target) || quiet >= Duration::from_secs(3) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "joiner ran 60 s: {run:?}"
        );
        match tokio::time::timeout(step, c.ws.next()).await {
            Err(_) => {
                if target > 0 {
                    quiet += step;
                }
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                quiet = Duration::ZERO;
                let v: Value = serde_json::from_str(&t).expect("JSON event");
                match v["type"].as_str() {
                    Some("history") if in_history => {
                        in_history = false;
                        let msgs = v["messages"].as_array().cloned().unwrap_or_default();
                        run.history = msgs.iter().filter_map(|m| m["seq"].as_u64()).collect();
                        let _ = joined.send(true);
                    }
                    Some("message") => run.live.push(v["message"]["seq"].as_u64().unwrap_or(0)),
                    _ => {}
                }
            }
            Ok(Some(Ok(Message::Close(f)))) => {
                run.closed = Some(f.map_or(1005, |f| u16::from(f.code)));
                if in_history {
                    let _ = joined.send(false);
                }
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => break,
        }
    }
    run
}

/// Follows a join at `url` that got its history, joining again after each
/// refusal (which must be a 1013) for at most [`WAIT`].
pub async fn follow_once_in(url: &str, end: &watch::Receiver<u64>) -> JoinHandle<Run> {
    super::eventually(
        "a join to get its history (seen: how the last one ended)",
        WAIT,
        async || {
            let (joined, mut outcome) = mpsc::unbounded_channel();
            let task = tokio::spawn(follow(url.to_string(), joined, end.clone()));
            if outcome.recv().await == Some(true) {
                return Ok(task);
            }
            let run = task.await.expect("follower");
            assert_eq!(run.closed, Some(1013), "a refused join: {run:?}");
            Err(run)
        },
    )
    .await
}

/// What is wrong with `run`, given the room's last seq: `None` when it holds
/// exactly `first..=last` in order, `first` being its history's first seq
/// (1 if the history was empty).
pub fn flaw(run: &Run, last: u64) -> Option<String> {
    if let Some(code) = run.closed {
        return Some(format!("closed with {code}"));
    }
    let first = run.history.first().copied().unwrap_or(1);
    let got: Vec<u64> = run.history.iter().chain(&run.live).copied().collect();
    if got.iter().copied().eq(first..=last) {
        return None;
    }
    let missing = ranges((first..=last).filter(|s| !got.contains(s)));
    let mut seen = std::collections::HashSet::new();
    let twice: Vec<u64> = got.iter().copied().filter(|s| !seen.insert(*s)).collect();
    let ordered = got.windows(2).all(|w| w[0] < w[1]);
    Some(format!(
        "history {}, live {}; missing {missing}; twice {twice:?}; in order: {ordered}",
        span(&run.history),
        span(&run.live),
    ))
}

fn span(seqs: &[u64]) -> String {
    match (seqs.first(), seqs.last()) {
        (Some(a), Some(b)) => format!("{a}..={b} ({})", seqs.len()),
        _ => "empty".into(),
    }
}

/// `1..=3, 7` style.
fn ranges(seqs: impl Iterator<Item = u64>) -> String {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for s in seqs {
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == s => *hi = s,
            _ => out.push((s, s)),
        }
    }
    if out.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = out
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..={b}")
            }
        })
        .collect();
    parts.join(", ")
}
