//! One client text message: limits, parsing, then what it asks for: a chat
//! message (permission, validation, publish), a `join` or `leave`
//! ([`membership`](super::membership)), a `delete` ([`delete`](super::delete)),
//! a token `refresh` ([`refresh`](super::refresh)), or `who` ([`who`](super::who)).
//!
//! No socket here: [`handle`] returns what happened, and the connection loop
//! turns the outcome into an `error` event or a close. The checks run in the
//! reference server's order, so clients see the same error for the same input.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::Instrument;

use super::delete;
use super::membership::{self, Refused};
use super::refresh;
use super::who;
use crate::app::App;
use crate::auth::{Lapsed, Perm};
use crate::broker::{Broker, Publish, Since};
use crate::fanout::rooms::Member;
use crate::limits::{ConnectionLimiter, IpKey};
use crate::metrics::{BrokerOp, LeaveReason, RefreshOutcome};
use crate::protocol::{self, ClientEvent, ErrorCode};
use crate::telemetry::spans;

/// What became of one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted: it has this `seq` and is on its way to every member.
    Published { seq: u64 },
    /// Refused with this error code; the connection stays open.
    Refused(ErrorCode),
    /// A room action refused with this code (the `error` names the room).
    RoomRefused { room: Arc<str>, code: ErrorCode },
    /// Done; what it answers (`history`, `left`) is already queued.
    Done,
    /// The connection's token no longer grants its room: close with 1008.
    Revoked,
    /// The connection's token (a JWT) has expired: close with 4001.
    Expired,
    /// A `refresh` was accepted: the connection now ends at `expires`.
    Refreshed { expires: Option<SystemTime> },
}

impl From<Lapsed> for Outcome {
    fn from(lapsed: Lapsed) -> Outcome {
        match lapsed {
            Lapsed::Revoked => Outcome::Revoked,
            Lapsed::Expired => Outcome::Expired,
        }
    }
}

/// Handles one client message from `member`, sent from `ip`.
pub async fn handle(
    app: &Arc<App>,
    member: &Arc<Member>,
    limiter: &ConnectionLimiter,
    ip: IpKey,
    raw: &str,
) -> Outcome {
    app.metrics.received.inc();
    // Span::none() unless this message starts a recorded trace.
    let span = spans::message_span(raw.len());
    let outcome = match check(app, member, limiter, ip, raw, &span) {
        Ok(Checked::Text(room, text)) => publish(app, member, &room, &text, &span).await,
        Ok(Checked::Join(room, since)) => join(app, member, room, &since).await,
        Ok(Checked::Leave(room)) => {
            if membership::leave(app, member, &room, LeaveReason::Leave).await {
                Outcome::Done
            } else {
                Outcome::RoomRefused {
                    room,
                    code: ErrorCode::NotJoined,
                }
            }
        }
        Ok(Checked::Delete(room, id)) => match delete::delete(app, member, &room, &id).await {
            Ok(()) => Outcome::Done,
            Err(delete::Refused::Code(code)) => Outcome::RoomRefused { room, code },
            Err(delete::Refused::Lapsed(lapsed)) => lapsed.into(),
        },
        Ok(Checked::Who(room)) => who::answer(app, member, room).await,
        Ok(Checked::Refresh(token)) => match refresh::apply(app, member, ip, &token).await {
            Some(expires) => Outcome::Refreshed { expires },
            None => Outcome::Refused(ErrorCode::BadToken),
        },
        Err(outcome) => outcome,
    };
    match &outcome {
        Outcome::Refused(ErrorCode::BadToken) => app.metrics.jwt.refresh(RefreshOutcome::Refused),
        Outcome::Refreshed { .. } => app.metrics.jwt.refresh(RefreshOutcome::Refreshed),
        _ => {}
    }
    match &outcome {
        Outcome::Published { .. } => {
            app.metrics.accepted_messages.inc();
            spans::message_outcome(&span, None);
        }
        Outcome::Refused(code) | Outcome::RoomRefused { code, .. } => {
            app.metrics.rejected_message(*code);
            spans::message_outcome(&span, Some(code.as_str()));
        }
        Outcome::Revoked => spans::message_outcome(&span, Some("revoked")),
        Outcome::Expired => spans::message_outcome(&span, Some("expired")),
        Outcome::Done | Outcome::Refreshed { .. } => spans::message_outcome(&span, None),
    }
    outcome
}

/// What passed the checks.
enum Checked {
    /// A chat message's cleaned text, to publish in the room.
    Text(Arc<str>, String),
    Join(Arc<str>, Since),
    Leave(Arc<str>),
    Delete(Arc<str>, String),
    Who(Arc<str>),
    /// A refresh's token, to check as a token.
    Refresh(String),
}

/// Every check before the action. Every event passes the same rate limits
/// as a message: a `refresh` cannot try tokens, nor `join` churn rooms,
/// faster than messages can be sent.
fn check(
    app: &App,
    member: &Member,
    limiter: &ConnectionLimiter,
    ip: IpKey,
    raw: &str,
    span: &tracing::Span,
) -> Result<Checked, Outcome> {
    let m = &app.metrics;
    if limiter.check().is_err() {
        m.rate_limited_connection.inc();
        return Err(Outcome::Refused(ErrorCode::RateLimited));
    }
    // An identified user's connections share one budget; checked before the
    // IP's, so a user over it does not spend its neighbours' IP budget.
    if member
        .user
        .as_ref()
        .is_some_and(|u| !app.limits.user_message(u))
    {
        m.rate_limited_user.inc();
        return Err(Outcome::Refused(ErrorCode::RateLimited));
    }
    if !app.limits.ip_message(ip) {
        m.rate_limited_ip.inc();
        return Err(Outcome::Refused(ErrorCode::RateLimited));
    }
    spans::step(span, "limit");
    let (room, text) = match protocol::parse_client_event(raw).map_err(Outcome::Refused)? {
        ClientEvent::Message { room, text } => (room, text),
        ClientEvent::Join { room, since } => {
            member.mark_v2();
            return Ok(Checked::Join(room.into(), since));
        }
        ClientEvent::Leave { room } => {
            member.mark_v2();
            return Ok(Checked::Leave(room.into()));
        }
        ClientEvent::Delete { room, id } => {
            member.mark_v2();
            return Ok(Checked::Delete(room.into(), id));
        }
        ClientEvent::Refresh { token } => {
            member.mark_v2();
            return Ok(Checked::Refresh(token));
        }
        ClientEvent::Who { room } => {
            member.mark_v2();
            return Ok(Checked::Who(room.into()));
        }
    };
    let named = room.is_some();
    if named {
        member.mark_v2();
    }
    let room: Arc<str> = room.map_or_else(|| member.home.clone(), Arc::from);
    // A version 1 client's error stays version 1's: no `room`.
    let refuse = |code| match named {
        true => Outcome::RoomRefused {
            room: room.clone(),
            code,
        },
        false => Outcome::Refused(code),
    };
    if !member.holds(&room) {
        return Err(refuse(ErrorCode::NotJoined));
    }
    // Checked on every message, against the grant in force now: a reload
    // may have revoked the token (or a JWT's key) or taken the room away,
    // and a JWT may have expired.
    // A namespace with `client_publish = false` takes messages only from
    // moderators (and, later, backends).
    let clients_publish = app.settings.rooms.policy(&room).client_publish;
    let allowed = app.auth.current(&member.credential(), |g| {
        let publishes = clients_publish || g.perm.contains(Perm::MODERATE);
        (g.admits(&room), g.can_write() && publishes)
    });
    match allowed {
        Ok((true, true)) => {}
        Ok((true, false)) => return Err(refuse(ErrorCode::Forbidden)),
        // The room was taken away: a version 2 connection leaves it (the
        // reload that did it makes it leave too), version 1's is closed.
        Ok((false, _)) if member.speaks_v2() => return Err(refuse(ErrorCode::Forbidden)),
        Ok((false, _)) => return Err(Outcome::Revoked),
        Err(lapsed) => return Err(lapsed.into()),
    }
    if text.is_empty() {
        return Err(refuse(ErrorCode::Empty));
    }
    if text.chars().count() > app.settings.limits.max_text_chars {
        return Err(refuse(ErrorCode::TooLarge));
    }
    spans::step(span, "validate");
    Ok(Checked::Text(room, text))
}

async fn join(app: &Arc<App>, member: &Arc<Member>, room: Arc<str>, since: &Since) -> Outcome {
    let code = match membership::join(app, member, room.clone(), since).await {
        Ok(()) => return Outcome::Done,
        Err(Refused::Lapsed(lapsed)) => return lapsed.into(),
        Err(Refused::Forbidden) => ErrorCode::Forbidden,
        Err(Refused::TooManyRooms) => ErrorCode::TooManyRooms,
        Err(Refused::AlreadyJoined) => ErrorCode::AlreadyJoined,
        Err(Refused::RoomFull) => ErrorCode::RoomFull,
        Err(Refused::Unavailable) => ErrorCode::Unavailable,
    };
    Outcome::RoomRefused { room, code }
}

async fn publish(
    app: &App,
    member: &Member,
    room: &str,
    text: &str,
    span: &tracing::Span,
) -> Outcome {
    let msg = Publish {
        room,
        from: &member.name,
        user: member.user.as_deref(),
        text,
        accepted_at: Instant::now(),
        once: None,
    };
    match app.broker.publish(msg).instrument(span.clone()).await {
        Ok(p) => Outcome::Published { seq: p.seq },
        Err(e) => {
            app.metrics.broker_error(BrokerOp::Publish);
            tracing::warn!(error = %e, "message not accepted");
            Outcome::Refused(ErrorCode::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::outbox::Outbox;
    use crate::{load_settings, Sources};

    fn ip() -> IpKey {
        IpKey::new(std::net::Ipv4Addr::LOCALHOST.into(), 64)
    }

    fn app(vars: &[(&str, &str)]) -> Arc<App> {
        let sources = Sources::from_env(vars.iter().copied());
        let settings = load_settings(&sources).expect("settings");
        App::new(settings, sources).expect("app")
    }

    fn member(app: &App, token: &str, room: &str) -> Arc<Member> {
        let m = Arc::new(Member::new(
            app.rooms.next_id(),
            "ana".into(),
            room.into(),
            crate::auth::Credential::Static(crate::auth::digest(token)),
            None,
            Outbox::new(8, 8),
        ));
        m.add_room(&m.home, 16).expect("room");
        m
    }

    fn msg(text: &str) -> String {
        serde_json::json!({ "type": "message", "text": text }).to_string()
    }

    #[tokio::test]
    async fn accepted_messages_get_the_next_seq() {
        let app = app(&[("CHAT_TOKEN", "t")]);
        let (m, limiter) = (member(&app, "t", "lobby"), app.limits.connection_limiter());
        for seq in 1..=3 {
            let out = handle(&app, &m, &limiter, ip(), &msg(" hi ")).await;
            assert_eq!(out, Outcome::Published { seq });
        }
        assert_eq!(app.metrics.accepted_messages.get(), 3);
    }

    #[tokio::test]
    async fn bad_input_is_refused_with_the_reference_codes() {
        let app = app(&[("CHAT_TOKEN", "t")]);
        let (m, limiter) = (member(&app, "t", "lobby"), app.limits.connection_limiter());
        let long = "x".repeat(app.settings.limits.max_text_chars + 1);
        for (raw, code) in [
            ("nope".to_string(), ErrorCode::BadJson),
            (r#"{"type":"shout"}"#.to_string(), ErrorCode::BadType),
            (msg("   "), ErrorCode::Empty),
            (msg(&long), ErrorCode::TooLarge),
        ] {
            let out = handle(&app, &m, &limiter, ip(), &raw).await;
            assert_eq!(out, Outcome::Refused(code), "{raw}");
        }
        // Exactly at the limit is fine; characters, not bytes, count.
        let at_limit = "한".repeat(app.settings.limits.max_text_chars);
        let out = handle(&app, &m, &limiter, ip(), &msg(&at_limit)).await;
        assert_eq!(out, Outcome::Published { seq: 1 });
    }

    #[tokio::test]
    async fn the_connection_budget_refuses_past_its_burst() {
        let app = app(&[("CHAT_TOKEN", "t"), ("CHAT__LIMITS__MESSAGE_BURST", "2")]);
        let (m, limiter) = (member(&app, "t", "lobby"), app.limits.connection_limiter());
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            outcomes.push(handle(&app, &m, &limiter, ip(), &msg("hi")).await);
        }
        assert_eq!(
            outcomes,
            [
                Outcome::Published { seq: 1 },
                Outcome::Published { seq: 2 },
                Outcome::Refused(ErrorCode::RateLimited)
            ]
        );
        assert_eq!(app.metrics.rate_limited_connection.get(), 1);
    }

    #[tokio::test]
    async fn read_only_tokens_are_forbidden_and_unknown_ones_revoked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tokens.toml");
        std::fs::write(
            &file,
            "[[tokens]]\ntoken = \"reader\"\nread_only = true\n\n\
             [[tokens]]\ntoken = \"ops\"\nrooms = [\"ops\"]\n",
        )
        .expect("write tokens");
        let path = file.to_string_lossy().into_owned();
        let app = app(&[("CHAT__AUTH__TOKENS_FILE", path.as_str())]);
        let limiter = app.limits.connection_limiter();
        let reader = member(&app, "reader", "lobby");
        assert_eq!(
            handle(&app, &reader, &limiter, ip(), &msg("hi")).await,
            Outcome::Refused(ErrorCode::Forbidden)
        );
        // A token that was never (or is no longer) configured, and a room
        // outside the grant: both end the connection.
        let gone = member(&app, "gone", "lobby");
        let elsewhere = member(&app, "ops", "lobby");
        for m in [&gone, &elsewhere] {
            assert_eq!(
                handle(&app, m, &limiter, ip(), &msg("hi")).await,
                Outcome::Revoked
            );
        }
        let ops = member(&app, "ops", "ops");
        assert_eq!(
            handle(&app, &ops, &limiter, ip(), &msg("hi")).await,
            Outcome::Published { seq: 1 }
        );
    }
}
