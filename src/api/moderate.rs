//! Moderation for backends: delete a message, kick a user from a room,
//! disconnect a user, on every replica. Each writes an audit record.

use std::sync::Arc;

use serde_json::json;

use super::error::ApiError;
use super::input;
use super::{Answer, Call};
use crate::app::App;
use crate::broker::{Broker, Control, Deleter, Deletion};
use crate::metrics::{BrokerOp, DeleteOutcome};
use crate::telemetry::audit::{Actor, AuditAction, AuditOutcome, AuditRecord};

/// `DELETE /api/v1/rooms/{room}/messages/{id}`: 204, or 404 when the
/// message is not in the room's history. Members get `deleted`.
pub(super) async fn delete(app: &Arc<App>, call: &Call) -> Result<Answer, ApiError> {
    let room = call.room()?;
    let id = call.route.id.as_deref().unwrap_or_default();
    // Ids are UUIDs; anything else cannot be in history.
    let found = match id.is_empty() || id.len() > 64 {
        true => Ok(Deletion::NotFound),
        false => {
            let by = Deleter {
                user: None,
                moderator: true,
            };
            app.broker.delete(room, id, by).await
        }
    };
    let (outcome, counted, answer) = match found {
        Ok(Deletion::Deleted { .. }) => (AuditOutcome::Ok, DeleteOutcome::Moderator, Ok(())),
        Ok(Deletion::NotFound) => (
            AuditOutcome::NotFound,
            DeleteOutcome::NotFound,
            Err(ApiError::NotFound),
        ),
        // A moderator may delete anything; kept for completeness.
        Ok(Deletion::Forbidden) => (
            AuditOutcome::Forbidden,
            DeleteOutcome::Forbidden,
            Err(ApiError::Forbidden),
        ),
        Err(e) => {
            app.metrics.broker_error(BrokerOp::Delete);
            tracing::warn!(error = %e, "api delete not done");
            (
                AuditOutcome::Unavailable,
                DeleteOutcome::Unavailable,
                Err(ApiError::Unavailable),
            )
        }
    };
    app.metrics.rooms.delete(counted);
    app.audit(&AuditRecord {
        actor: Actor::Api(&call.key.name),
        action: AuditAction::MessageDelete,
        room: Some(room),
        subject: Some(id).filter(|id| id.len() <= 64),
        outcome,
    });
    answer.map(|()| Answer::no_content())
}

/// `POST /api/v1/rooms/{room}/kick` `{"user"}`: the user's connections
/// leave the room on every replica.
pub(super) async fn kick(app: &Arc<App>, call: &Call) -> Result<Answer, ApiError> {
    let room = call.room()?;
    let user = input::kick_body(&call.body)?;
    let control = Control::Kick {
        room: room.into(),
        user: user.as_str().into(),
    };
    let removed = act(app, call, control, AuditAction::RoomKick, Some(room), &user).await?;
    Ok(Answer::ok(json!({ "removed": removed })))
}

/// `POST /api/v1/users/{user}/disconnect` `{"reason"}`: every connection of
/// the user, on every replica, closes with 4003.
pub(super) async fn disconnect(app: &Arc<App>, call: &Call) -> Result<Answer, ApiError> {
    let user = input::user(call.route.user.as_deref().unwrap_or_default())?.to_owned();
    let reason = input::disconnect_body(&call.body)?;
    let control = Control::Disconnect {
        user: user.as_str().into(),
        reason: reason.into(),
    };
    let n = act(app, call, control, AuditAction::UserDisconnect, None, &user).await?;
    Ok(Answer::ok(json!({ "disconnected": n })))
}

async fn act(
    app: &Arc<App>,
    call: &Call,
    control: Control,
    action: AuditAction,
    room: Option<&str>,
    user: &str,
) -> Result<u64, ApiError> {
    let result = app.broker.control(control).await;
    let outcome = match &result {
        Ok(_) => AuditOutcome::Ok,
        Err(_) => AuditOutcome::Unavailable,
    };
    app.audit(&AuditRecord {
        actor: Actor::Api(&call.key.name),
        action,
        room,
        subject: Some(user),
        outcome,
    });
    result.map_err(|e| {
        tracing::warn!(error = %e, "api control not done");
        ApiError::Unavailable
    })
}
