//! The audit log: one JSON log line (target `audit`) per change made through
//! the server API and per moderation action over a WebSocket. Fields:
//! `actor`, `action`, `room`, `subject` (the message id or user acted on),
//! `outcome`, `at`. Never message text, a token or a key.
//!
//! API.md names the acted-on field `target`; in a JSON log line `target` is
//! already the log target (`audit`), and a second `target` key would make
//! the line ambiguous to parsers, so it is written as `subject`.

/// What was done (also the `action` label of `wschat_audit_records_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    MessagePublish,
    MessageDelete,
    RoomKick,
    UserDisconnect,
}

impl AuditAction {
    /// Every action, for label pre-registration.
    pub const ALL: [AuditAction; 4] = [
        AuditAction::MessagePublish,
        AuditAction::MessageDelete,
        AuditAction::RoomKick,
        AuditAction::UserDisconnect,
    ];

    /// The `action` field and label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::MessagePublish => "message.publish",
            AuditAction::MessageDelete => "message.delete",
            AuditAction::RoomKick => "room.kick",
            AuditAction::UserDisconnect => "user.disconnect",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    Ok,
    /// An idempotent publish answered with its first result; nothing new.
    Replayed,
    NotFound,
    Forbidden,
    Unavailable,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Replayed => "replayed",
            AuditOutcome::NotFound => "not_found",
            AuditOutcome::Forbidden => "forbidden",
            AuditOutcome::Unavailable => "unavailable",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// An API key, by its configured name.
    Api(&'a str),
    /// An identified user over a WebSocket.
    User(&'a str),
    /// A connection without an identified user (a moderator's static token).
    Anonymous,
}

/// One audit record.
#[derive(Debug, Clone, Copy)]
pub struct AuditRecord<'a> {
    pub actor: Actor<'a>,
    pub action: AuditAction,
    pub room: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub outcome: AuditOutcome,
}

/// Writes `record` to the log.
pub fn write(record: &AuditRecord<'_>) {
    let actor = match record.actor {
        Actor::Api(name) => format!("api:{name}"),
        Actor::User(sub) => format!("user:{sub}"),
        Actor::Anonymous => "anonymous".to_owned(),
    };
    tracing::info!(
        target: "audit",
        actor,
        action = record.action.as_str(),
        room = record.room,
        subject = record.subject,
        outcome = record.outcome.as_str(),
        at = crate::protocol::now_rfc3339(),
        "audit"
    );
}
