//! `who`: the online count and identified users of a room across every
//! replica, for a connection that is in the room and whose grant in force
//! still admits it. The `members` answer is queued like `history`.

use std::sync::Arc;

use super::membership::reply;
use super::message::Outcome;
use crate::app::App;
use crate::broker::Broker;
use crate::fanout::rooms::Member;
use crate::metrics::WhoOutcome;
use crate::protocol::{event, ErrorCode};

/// Answers `who` for `room`.
pub async fn answer(app: &Arc<App>, member: &Member, room: Arc<str>) -> Outcome {
    let (outcome, counted) = ask(app, member, room).await;
    app.metrics.rooms.who(counted);
    outcome
}

async fn ask(app: &Arc<App>, member: &Member, room: Arc<str>) -> (Outcome, WhoOutcome) {
    let refuse = |room, code| Outcome::RoomRefused { room, code };
    if !member.holds(&room) {
        return (refuse(room, ErrorCode::NotJoined), WhoOutcome::NotJoined);
    }
    // Against the grant in force now: a reload or an expiry may have taken
    // the room away before the connection was made to leave it.
    match app.auth.current(&member.credential(), |g| g.admits(&room)) {
        Ok(true) => {}
        Ok(false) => return (refuse(room, ErrorCode::Forbidden), WhoOutcome::Forbidden),
        Err(lapsed) => return (lapsed.into(), WhoOutcome::Forbidden),
    }
    match app.broker.members(&room).await {
        Ok(m) => {
            let users = m.listed.iter().map(|l| (&*l.user, &*l.name));
            reply(member, &event::members(&room, m.online, users, m.truncated));
            (Outcome::Done, WhoOutcome::Answered)
        }
        Err(e) => {
            tracing::warn!(error = %e, "who unanswered");
            (
                refuse(room, ErrorCode::Unavailable),
                WhoOutcome::Unavailable,
            )
        }
    }
}
