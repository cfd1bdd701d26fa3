//! Control across replicas, and the room listing: what the server API asks
//! of every replica at once.
//!
//! A kick or a disconnect is published on `wschat:control`, which every
//! replica subscribes to. Each applies it to its own connections (through
//! the session layer's channel, see [`crate::broker::control`]) and answers
//! with its count on the asker's `wschat:control:reply:<replica id>`. PUBLISH
//! says how many replicas received the request; the asker waits (bounded)
//! for that many answers and adds them up. The channels carry no secret and
//! no message text: a room, a user id, a close reason.
//!
//! Rooms with members are those whose `online` hash has a live entry. They
//! are found with SCAN (keys of one pattern), which costs O(all keys) per
//! listing: an operator's call, not a message path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{script, Shared};
use crate::broker::control::{apply_here, ANSWER_TIMEOUT};
use crate::broker::{BrokerError, Control, ControlSender, RoomPage};

/// The channel every replica hears control requests on.
const CHANNEL: &str = "wschat:control";
/// How often a failed subscription is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// Keys read per SCAN step.
const SCAN_COUNT: usize = 1000;

/// This replica's end of the control channel.
pub(super) struct Controls {
    /// To this replica's sessions.
    to_sessions: ControlSender,
    /// Where this replica's answers arrive (made once: every pub/sub
    /// message is checked against it).
    reply_channel: String,
    /// Requests this replica asked, by id: where their answers go.
    pending: Mutex<HashMap<String, mpsc::UnboundedSender<u64>>>,
}

impl Controls {
    pub(super) fn new(to_sessions: ControlSender, replica: &str) -> Controls {
        Controls {
            to_sessions,
            reply_channel: reply_channel(replica),
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<u64>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Serialize, Deserialize)]
struct Request {
    /// The request's id.
    req: String,
    /// The asking replica.
    from: String,
    #[serde(flatten)]
    control: Control,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    req: String,
    n: u64,
}

fn reply_channel(replica: &str) -> String {
    format!("wschat:control:reply:{replica}")
}

/// Subscribes to the control channel and this replica's answers (the
/// connection subscribes again by itself after a reconnect; a cluster's
/// after a failover, see [`super::subs::resubscribe`]).
pub(super) async fn listen(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        if subscribe_all(&shared).await {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Subscribes to both control channels, one at a time (on a cluster each
/// lives in its own slot); false if one failed.
pub(super) async fn subscribe_all(shared: &Shared) -> bool {
    let mut all = true;
    for channel in [CHANNEL, shared.control.reply_channel.as_str()] {
        if let Err(e) = shared.call(shared.conn.subscribe(channel)).await {
            tracing::debug!(error = %e, "control channel not subscribed yet");
            all = false;
        }
    }
    all
}

/// Whether `channel` is one of this replica's control channels.
pub(super) fn is_control(shared: &Shared, channel: &[u8]) -> bool {
    channel == CHANNEL.as_bytes() || channel == shared.control.reply_channel.as_bytes()
}

/// Handles a pub/sub message if it is on a control channel; false if not.
pub(super) fn on_push(shared: &Arc<Shared>, channel: &[u8], payload: &[u8]) -> bool {
    if channel == CHANNEL.as_bytes() {
        match serde_json::from_slice::<Request>(payload) {
            Ok(request) => {
                let shared = shared.clone();
                tokio::spawn(async move { answer(&shared, request).await });
            }
            Err(_) => tracing::warn!("malformed control request"),
        }
        return true;
    }
    if channel == shared.control.reply_channel.as_bytes() {
        match serde_json::from_slice::<Answer>(payload) {
            Ok(a) => {
                if let Some(tx) = shared.control.pending().get(&a.req) {
                    let _ = tx.send(a.n);
                }
            }
            Err(_) => tracing::warn!("malformed control answer"),
        }
        return true;
    }
    false
}

/// Applies a request here and tells the asker how many connections it reached.
async fn answer(shared: &Shared, request: Request) {
    let n = match apply_here(&shared.control.to_sessions, request.control).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "control request not applied here");
            return;
        }
    };
    let Ok(body) = serde_json::to_string(&Answer {
        req: request.req,
        n,
    }) else {
        return;
    };
    let sent = shared
        .call(shared.conn.publish(&reply_channel(&request.from), &body))
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "control answer not sent");
    }
}

/// Sends `control` to every replica and adds up their answers.
pub(super) async fn request(shared: &Shared, control: Control) -> Result<u64, BrokerError> {
    if !shared.status.is_up() {
        return Err(BrokerError::Down);
    }
    let req = uuid::Uuid::new_v4().to_string();
    let (tx, mut answers) = mpsc::unbounded_channel();
    shared.control.pending().insert(req.clone(), tx);
    let result = ask(shared, &req, control, &mut answers).await;
    shared.control.pending().remove(&req);
    result
}

async fn ask(
    shared: &Shared,
    req: &str,
    control: Control,
    answers: &mut mpsc::UnboundedReceiver<u64>,
) -> Result<u64, BrokerError> {
    let body = serde_json::to_string(&Request {
        req: req.to_owned(),
        from: shared.replica.clone(),
        control,
    })
    .map_err(|_| BrokerError::Reply("control"))?;
    let replicas: u64 = shared.call(shared.conn.publish(CHANNEL, &body)).await?;
    let (mut total, mut heard) = (0, 0);
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT + Duration::from_millis(500);
    while heard < replicas {
        match tokio::time::timeout_at(deadline, answers.recv()).await {
            Ok(Some(n)) => {
                total += n;
                heard += 1;
            }
            Ok(None) | Err(_) => break,
        }
    }
    if heard < replicas {
        tracing::warn!(
            replicas,
            heard,
            "some replicas did not answer a control request"
        );
    }
    Ok(total)
}

/// Up to `limit` rooms with members on any replica, by name, after `after`.
pub(super) async fn rooms(
    shared: &Shared,
    limit: usize,
    after: Option<&str>,
) -> Result<RoomPage, BrokerError> {
    let mut names: Vec<String> = Vec::new();
    // A cluster's keys are spread over its masters: scan each.
    for node in shared.call(shared.conn.key_nodes()).await? {
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(script::online_key("*"))
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<String>) =
                shared.call(shared.conn.query_on(&node, &cmd)).await?;
            names.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix("wschat:{")?.strip_suffix("}:online"))
                    .filter(|room| after.is_none_or(|a| *room > a))
                    .map(str::to_owned),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    names.sort_unstable();
    names.dedup();
    let mut conn = shared.conn.clone();
    let mut page = RoomPage::default();
    for room in names {
        let mut inv = shared.scripts.online.prepare_invoke();
        inv.key(script::online_key(&room)).arg(&shared.replica);
        let (total, mine): (u64, u64) = shared.call(inv.invoke_async(&mut conn)).await?;
        let here = shared.rooms.get(&room).map_or(0, |r| r.local_online()) as u64;
        let online = total.saturating_sub(mine) + here;
        if online == 0 {
            continue;
        }
        if page.rooms.len() == limit {
            page.next = page.rooms.last().map(|(r, _)| r.clone());
            break;
        }
        page.rooms.push((room.into(), online));
    }
    Ok(page)
}
