//! `POST /api/v1/rooms/{room}/messages` and `POST /api/v1/publish`: a
//! backend's message, through the same broker path as a client's (next
//! `seq`, history, fan-out, traces, counts), under the room's namespace
//! policy except `client_publish`. An `idempotencyKey` makes a retry
//! (within `api.idempotency_window`, on any replica) answer with the first
//! result instead of sending again.

use std::sync::Arc;
use std::time::Instant;

use hyper::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::input::{self, Message};
use super::{Answer, Call};
use crate::app::App;
use crate::broker::{Broker, Once, Publish, Published};
use crate::metrics::BrokerOp;
use crate::telemetry::audit::{Actor, AuditAction, AuditOutcome, AuditRecord};

/// One room.
pub(super) async fn one(app: &Arc<App>, call: &Call) -> Result<Answer, ApiError> {
    let room = call.room()?;
    let max = app.settings.limits.max_text_chars;
    let message = input::publish_body(&call.body, max)?;
    let p = send(app, call, room, &message).await?;
    let status = match p.replayed {
        true => StatusCode::OK,
        false => StatusCode::CREATED,
    };
    Ok(Answer::json(
        status,
        json!({ "id": p.id, "seq": p.seq, "epoch": &*p.epoch }),
    ))
}

/// Up to 100 rooms; each room's result or error, in the order given.
pub(super) async fn many(app: &Arc<App>, call: &Call) -> Result<Answer, ApiError> {
    let max = app.settings.limits.max_text_chars;
    let (rooms, message) = input::publish_many_body(&call.body, max)?;
    let mut results = Vec::with_capacity(rooms.len());
    for room in &rooms {
        results.push(match send(app, call, room, &message).await {
            Ok(p) => json!({ "room": room, "id": p.id, "seq": p.seq, "epoch": &*p.epoch }),
            Err(e) => json!({ "room": room, "error": e.code() }),
        });
    }
    Ok(Answer::ok(json!({ "results": results })))
}

/// Publishes `message` into `room` for the caller's key.
async fn send(
    app: &Arc<App>,
    call: &Call,
    room: &str,
    message: &Message,
) -> Result<Published, ApiError> {
    let once = message.idempotency_key.as_deref().map(|k| Once {
        scope: scope(&call.key.name, k),
        window: app.settings.api.idempotency_window,
    });
    let msg = Publish {
        room,
        from: message.from.as_deref().unwrap_or(&call.key.name),
        user: message.user.as_deref(),
        text: &message.text,
        accepted_at: Instant::now(),
        once,
    };
    let result = app.broker.publish(msg).await;
    let (outcome, answer) = match result {
        Ok(p) if p.replayed => {
            app.metrics.api.replays.inc();
            (AuditOutcome::Replayed, Ok(p))
        }
        Ok(p) => {
            app.metrics.accepted_messages.inc();
            (AuditOutcome::Ok, Ok(p))
        }
        Err(e) => {
            app.metrics.broker_error(BrokerOp::Publish);
            tracing::warn!(error = %e, "api publish not accepted");
            (AuditOutcome::Unavailable, Err(ApiError::Unavailable))
        }
    };
    app.audit(&AuditRecord {
        actor: Actor::Api(&call.key.name),
        action: AuditAction::MessagePublish,
        room: Some(room),
        subject: answer.as_ref().ok().map(|p| p.id.as_str()),
        outcome,
    });
    answer
}

/// The idempotency scope: one key's retries, never another key's.
fn scope(key_name: &str, idempotency_key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(key_name.as_bytes());
    h.update([0]);
    h.update(idempotency_key.as_bytes());
    h.finalize().into()
}
