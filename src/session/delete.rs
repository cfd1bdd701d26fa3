//! A `delete`: checked against the grant in force now (the message's
//! identified author, or `moderate`), removed from the room's history by the
//! broker (every replica's members get `deleted`), counted, and written to
//! the audit log.

use crate::app::App;
use crate::auth::{Lapsed, Perm};
use crate::broker::{Broker, Deleter, Deletion};
use crate::fanout::rooms::Member;
use crate::metrics::{BrokerOp, DeleteOutcome};
use crate::protocol::ErrorCode;
use crate::telemetry::audit::{Actor, AuditAction, AuditOutcome, AuditRecord};

/// Why a delete did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Answered with this error code (with the room).
    Code(ErrorCode),
    /// The connection's credential lapsed: close it.
    Lapsed(Lapsed),
}

/// Deletes message `id` of `room` for `member`.
pub async fn delete(app: &App, member: &Member, room: &str, id: &str) -> Result<(), Refused> {
    if !member.holds(room) {
        return Err(Refused::Code(ErrorCode::NotJoined));
    }
    let allowed = app.auth.current(&member.credential(), |g| {
        (g.admits(room), g.perm.contains(Perm::MODERATE))
    });
    let moderator = match allowed {
        Ok((true, moderator)) => moderator,
        Ok((false, _)) => return Err(Refused::Code(ErrorCode::Forbidden)),
        Err(lapsed) => return Err(Refused::Lapsed(lapsed)),
    };
    let by = Deleter {
        user: member.user.as_deref(),
        moderator,
    };
    // A guest deletes nothing: its messages carry no author to match.
    let result = match by.user.is_some() || moderator {
        true => app.broker.delete(room, id, by).await,
        false => Ok(Deletion::Forbidden),
    };
    let seq = match &result {
        Ok(Deletion::Deleted { seq }) => Some(*seq),
        _ => None,
    };
    let (outcome, answer) = match result {
        Ok(Deletion::Deleted { .. }) if moderator => (DeleteOutcome::Moderator, Ok(())),
        Ok(Deletion::Deleted { .. }) => (DeleteOutcome::Author, Ok(())),
        Ok(Deletion::Forbidden) => (DeleteOutcome::Forbidden, Err(ErrorCode::Forbidden)),
        Ok(Deletion::NotFound) => (DeleteOutcome::NotFound, Err(ErrorCode::NotFound)),
        Err(e) => {
            app.metrics.broker_error(BrokerOp::Delete);
            tracing::warn!(error = %e, "delete not done");
            (DeleteOutcome::Unavailable, Err(ErrorCode::Unavailable))
        }
    };
    app.metrics.rooms.delete(outcome);
    let audited = match outcome {
        DeleteOutcome::Author | DeleteOutcome::Moderator => AuditOutcome::Ok,
        DeleteOutcome::Forbidden => AuditOutcome::Forbidden,
        DeleteOutcome::NotFound => AuditOutcome::NotFound,
        DeleteOutcome::Unavailable => AuditOutcome::Unavailable,
    };
    // Who removed what, for the operators; nothing of the credential.
    app.audit(&AuditRecord {
        actor: by.user.map_or(Actor::Anonymous, Actor::User),
        action: AuditAction::MessageDelete,
        room: Some(room),
        subject: Some(id),
        outcome: audited,
    });
    tracing::debug!(seq, moderator, "message delete");
    answer.map_err(Refused::Code)
}
