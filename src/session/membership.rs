//! Joining and leaving rooms, for the room of the query string and for
//! every `join` and `leave` after it.
//!
//! A join is authorised against the grant in force now, carried here by
//! the broker, then its history is queued and the member made live: frames
//! that arrive while the history is read are held for it and released after
//! it, by `seq` (see [`crate::fanout::rooms`]), so nothing is lost or shown
//! twice, per room.

use std::sync::Arc;

use crate::app::App;
use crate::auth::{Lapsed, Perm};
use crate::broker::{Broker, Since};
use crate::fanout::rooms::{AddRoom, Member};
use crate::metrics::{BrokerOp, JoinOutcome, LeaveReason};
use crate::protocol::event;
use crate::ws::frame;
use crate::ws::transport::Outgoing;

use super::presence::{self, Change};

/// Why a join did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The grant in force does not allow the room (or reading).
    Forbidden,
    /// The connection holds `limits.max_rooms_per_connection` rooms.
    TooManyRooms,
    /// The connection is in the room already.
    AlreadyJoined,
    /// The room is at its namespace's `max_members`.
    RoomFull,
    /// The broker could not carry the room or read its history.
    Unavailable,
    /// The connection's credential lapsed: close it (1008 or 4001).
    Lapsed(Lapsed),
}

/// Joins `room`, from `since`. On success the room's `history` and then its
/// live frames are queued for the member, and the join is announced.
pub async fn join(
    app: &Arc<App>,
    member: &Arc<Member>,
    room: Arc<str>,
    since: &Since,
) -> Result<(), Refused> {
    let result = enter(app, member, room, since).await;
    app.metrics.rooms.join(match result {
        Ok(()) => JoinOutcome::Joined,
        Err(Refused::Forbidden | Refused::Lapsed(_)) => JoinOutcome::Forbidden,
        Err(Refused::TooManyRooms) => JoinOutcome::TooManyRooms,
        Err(Refused::AlreadyJoined) => JoinOutcome::AlreadyJoined,
        Err(Refused::RoomFull) => JoinOutcome::RoomFull,
        Err(Refused::Unavailable) => JoinOutcome::Unavailable,
    });
    result
}

async fn enter(
    app: &Arc<App>,
    member: &Arc<Member>,
    room: Arc<str>,
    since: &Since,
) -> Result<(), Refused> {
    let allowed = app.auth.current(&member.credential(), |g| {
        (g.admits(&room), g.perm.contains(Perm::MODERATE))
    });
    let moderator = match allowed {
        Ok((true, moderator)) => moderator,
        Ok((false, _)) => return Err(Refused::Forbidden),
        Err(lapsed) => return Err(Refused::Lapsed(lapsed)),
    };
    if member.holds(&room) {
        return Err(Refused::AlreadyJoined);
    }
    // The cap counts every replica's members (others' as last reported): a
    // soft cap, which joins racing on several replicas may pass by a few.
    let cap = app.settings.rooms.policy(&room).max_members;
    if cap > 0 && !moderator {
        match app.broker.online(&room).await {
            Ok(online) if online >= cap => return Err(Refused::RoomFull),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "room size unknown; join refused");
                return Err(Refused::Unavailable);
            }
        }
    }
    let held = member
        .add_room(&room, app.settings.limits.max_rooms_per_connection)
        .map_err(|e| match e {
            AddRoom::Already => Refused::AlreadyJoined,
            AddRoom::TooMany => Refused::TooManyRooms,
        })?;
    let joined = app.rooms.join(member, &room);
    // Every joiner waits for the room to be carried before it reads
    // history, not only the room's first local member: a history read
    // before that could end before messages this replica never delivers.
    if let Err(e) = app.broker.watch(&room).await {
        // Counted once per failed subscription, by the broker.
        tracing::warn!(error = %e, "room not carried");
        undo(app, member, &room);
        return Err(Refused::Unavailable);
    }
    let history = match app.broker.history(&room, since).await {
        Ok(history) => history,
        Err(e) => {
            app.metrics.broker_error(BrokerOp::History);
            tracing::warn!(error = %e, "history unavailable");
            undo(app, member, &room);
            return Err(Refused::Unavailable);
        }
    };
    let json = event::history(&room, history.messages.iter().map(|m| &**m), &history.epoch);
    reply(member, &json);
    app.rooms.activate(&joined.room, member, history.last_seq);
    app.metrics.rooms.rooms_per_connection.observe(held as f64);
    presence::announce(app, &joined.room, Change::Joined(member.name.clone())).await;
    Ok(())
}

/// Takes back a join that failed before the member went live (no presence
/// was announced for it).
fn undo(app: &App, member: &Member, room: &str) {
    member.remove_room(room);
    if app.rooms.leave(member, room).is_some_and(|l| l.last) {
        app.broker.unwatch(room);
    }
}

/// Leaves `room`: announced to its members, `left` sent to the member
/// unless it is closing. False when it was not in the room.
pub async fn leave(app: &Arc<App>, member: &Arc<Member>, room: &str, reason: LeaveReason) -> bool {
    if !member.remove_room(room) {
        return false;
    }
    app.metrics.rooms.leave(reason);
    let left = app.rooms.leave(member, room);
    if let Some(reason) = match reason {
        LeaveReason::Leave => Some(event::LeftReason::Leave),
        LeaveReason::Forbidden => Some(event::LeftReason::Forbidden),
        LeaveReason::Kicked => Some(event::LeftReason::Kicked),
        LeaveReason::Closed => None,
    } {
        reply(member, &event::left(room, reason));
    }
    if let Some(left) = left {
        let change = Change::Left(member.name.clone());
        Box::pin(presence::announce(app, &left.room, change)).await;
        if left.last {
            app.broker.unwatch(room);
        }
    }
    true
}

/// Leaves every room (the connection closed).
pub async fn leave_all(app: &Arc<App>, member: &Arc<Member>) {
    for room in member.rooms() {
        leave(app, member, &room, LeaveReason::Closed).await;
    }
}

/// Queues a frame that answers the member's own action.
pub(super) fn reply(member: &Member, json: &[u8]) {
    member.outbox.push_reply(Outgoing {
        frame: frame::text(json),
        accepted_at: None,
        latest: 0,
    });
}
