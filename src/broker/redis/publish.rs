//! Accepting a message on Redis: the PUBLISH script call (its idempotency
//! key when the publish has one), and finding out whether a publish whose
//! reply was lost landed anyway.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use redis::streams::StreamRangeReply;

use super::{script, Shared};
use crate::broker::{BrokerError, Publish, Published};
use crate::protocol::event::MessageHead;

/// Newest log entries searched for a publish whose reply was lost.
const LANDED_SCAN: usize = 128;

/// Gives the message the room's next seq, keeps it and publishes it, or
/// answers an earlier publish of the same idempotency scope.
pub(super) async fn accept(s: &Shared, msg: Publish<'_>) -> Result<Published, BrokerError> {
    if !s.status.is_up() {
        return Err(BrokerError::Down);
    }
    let started = Instant::now();
    let room = msg.room;
    // Everything but `seq`: the script appends the number it assigns
    // and the closing brace, as `MessageHead::finish` does.
    let head = MessageHead::new(room, msg.from, msg.user, msg.text);
    // The publish id (also the epoch candidate), not the message id.
    let publish_id = uuid::Uuid::new_v4().to_string();
    let policy = s.limits.rooms.policy(room);
    let mut inv = s.scripts.publish.prepare_invoke();
    inv.key(script::meta_key(room))
        .key(script::log_key(room))
        .key(script::online_key(room));
    if let Some(once) = &msg.once {
        inv.key(script::once_key(room, &hex(&once.scope)));
    }
    inv.arg(&publish_id)
        .arg(policy.history)
        .arg(s.limits.history_ttl_ms)
        .arg(script::channel(room))
        .arg(head.as_str())
        // The publishing span's W3C traceparent ("" unless this trace is recorded).
        .arg(crate::telemetry::current_traceparent().unwrap_or_default())
        .arg(unix_micros(msg.accepted_at))
        .arg(policy.oldest_kept(SystemTime::now()).unwrap_or_default())
        .arg(head.id())
        .arg(msg.once.map_or(1, |o| o.window.as_millis().max(1) as u64));
    let mut conn = s.conn.clone();
    let reply = s.call(inv.invoke_async::<(u64, String, u8, String)>(&mut conn));
    let published = match reply.await {
        Ok((seq, epoch, replayed, id)) => Published {
            id,
            seq,
            epoch: epoch.into(),
            replayed: replayed == 1,
        },
        // A lost reply is not a lost message: Redis may have run the
        // script (and everyone got the message) while the reply was late
        // or the connection broke. Telling the sender `unavailable` then
        // invites a resend and a duplicate, so look for it first.
        Err(e) => match landed(s, room, &publish_id).await {
            Some((seq, epoch)) => {
                tracing::info!(seq, "publish reply lost, but the message is in the log");
                Published {
                    id: head.id().to_owned(),
                    seq,
                    epoch,
                    replayed: false,
                }
            }
            None => return Err(e),
        },
    };
    s.metrics
        .broker_latency
        .observe(started.elapsed().as_secs_f64());
    Ok(published)
}

/// The seq of publish `id`, and the room's epoch, if the room's log
/// holds it. Commands on one connection run in order, so this read, sent
/// after the publish, sees it if Redis ran it; when Redis cannot answer
/// this either, `None`.
async fn landed(s: &Shared, room: &str, id: &str) -> Option<(u64, Arc<str>)> {
    let mut conn = s.conn.clone();
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(script::log_key(room))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(LANDED_SCAN);
    let reply: StreamRangeReply = s.call(cmd.query_async(&mut conn)).await.ok()?;
    let entry = reply
        .ids
        .into_iter()
        .find(|e| e.get::<String>("p").as_deref() == Some(id))?;
    let seq = entry.id.split('-').next()?.parse().ok()?;
    let mut cmd = redis::cmd("HGET");
    cmd.arg(script::meta_key(room)).arg("epoch");
    let epoch: String = s.call(cmd.query_async(&mut conn)).await.ok()?;
    Some((seq, epoch.into()))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Microseconds since the Unix epoch at `at` (for latency across replicas).
fn unix_micros(at: Instant) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(at.elapsed()).as_micros() as u64
}
