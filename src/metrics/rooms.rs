//! The metrics of rooms: joins by outcome, leaves by reason, how many rooms
//! connections hold, shared history reads, message deletes, and `who`
//! requests. No label ever names a room or a user.

use prometheus::{Histogram, IntCounter, IntCounterVec, Registry};

use super::{counter, counter_vec, histogram};

/// What became of a join (the room of the query string, or a `join`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined,
    Forbidden,
    TooManyRooms,
    AlreadyJoined,
    RoomFull,
    Unavailable,
}

impl JoinOutcome {
    const ALL: [JoinOutcome; 6] = [
        JoinOutcome::Joined,
        JoinOutcome::Forbidden,
        JoinOutcome::TooManyRooms,
        JoinOutcome::AlreadyJoined,
        JoinOutcome::RoomFull,
        JoinOutcome::Unavailable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            JoinOutcome::Joined => "joined",
            JoinOutcome::Forbidden => "forbidden",
            JoinOutcome::TooManyRooms => "too_many_rooms",
            JoinOutcome::AlreadyJoined => "already_joined",
            JoinOutcome::RoomFull => "room_full",
            JoinOutcome::Unavailable => "unavailable",
        }
    }
}

/// Why a connection left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// It asked (`leave`).
    Leave,
    /// Its grant no longer allows the room (reload, refresh).
    Forbidden,
    /// The connection closed.
    Closed,
    /// A moderator or the server API removed it.
    Kicked,
}

impl LeaveReason {
    const ALL: [LeaveReason; 4] = [
        LeaveReason::Leave,
        LeaveReason::Forbidden,
        LeaveReason::Closed,
        LeaveReason::Kicked,
    ];

    fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Leave => "leave",
            LeaveReason::Forbidden => "forbidden",
            LeaveReason::Closed => "closed",
            LeaveReason::Kicked => "kicked",
        }
    }
}

/// What became of a `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// By its identified author.
    Author,
    /// By a moderator (not its author).
    Moderator,
    Forbidden,
    NotFound,
    Unavailable,
}

impl DeleteOutcome {
    const ALL: [DeleteOutcome; 5] = [
        DeleteOutcome::Author,
        DeleteOutcome::Moderator,
        DeleteOutcome::Forbidden,
        DeleteOutcome::NotFound,
        DeleteOutcome::Unavailable,
    ];

    /// The `outcome` label (also the audit record's).
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteOutcome::Author => "author",
            DeleteOutcome::Moderator => "moderator",
            DeleteOutcome::Forbidden => "forbidden",
            DeleteOutcome::NotFound => "not_found",
            DeleteOutcome::Unavailable => "unavailable",
        }
    }
}

/// What became of a `who`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhoOutcome {
    /// `members` was sent.
    Answered,
    /// The connection is not in the room.
    NotJoined,
    /// The grant in force does not admit the room (or has lapsed).
    Forbidden,
    /// The broker could not say.
    Unavailable,
}

impl WhoOutcome {
    const ALL: [WhoOutcome; 4] = [
        WhoOutcome::Answered,
        WhoOutcome::NotJoined,
        WhoOutcome::Forbidden,
        WhoOutcome::Unavailable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            WhoOutcome::Answered => "answered",
            WhoOutcome::NotJoined => "not_joined",
            WhoOutcome::Forbidden => "forbidden",
            WhoOutcome::Unavailable => "unavailable",
        }
    }
}

/// Joins, leaves, rooms held, deletes and `who` requests.
pub struct RoomMetrics {
    joins: IntCounterVec,
    leaves: IntCounterVec,
    deletes: IntCounterVec,
    who: IntCounterVec,
    /// Rooms a connection holds, observed after each successful join.
    pub rooms_per_connection: Histogram,
    /// Joiners served by a history read already on its way (Redis broker).
    pub history_reads_shared: IntCounter,
    /// Chat frames the fan-out wrote straight to an idle socket.
    pub direct_writes: IntCounter,
    /// Pauses a big room's fan-out made to batch (`rooms.fanout_pause`).
    pub fanout_pauses: IntCounter,
}

impl RoomMetrics {
    pub(super) fn new(r: &Registry) -> RoomMetrics {
        RoomMetrics {
            joins: counter_vec(
                r,
                "wschat_room_joins_total",
                "Joins (the room of the query string and each join event), by outcome.",
                "outcome",
                &JoinOutcome::ALL.map(JoinOutcome::as_str),
            ),
            leaves: counter_vec(
                r,
                "wschat_room_leaves_total",
                "Rooms left, by reason (leave: asked; forbidden: the grant no longer allows it; closed: the connection ended).",
                "reason",
                &LeaveReason::ALL.map(LeaveReason::as_str),
            ),
            deletes: counter_vec(
                r,
                "wschat_message_deletes_total",
                "Client delete events, by outcome (author, moderator: deleted by whom; forbidden, not_found, unavailable: refused).",
                "outcome",
                &DeleteOutcome::ALL.map(DeleteOutcome::as_str),
            ),
            who: counter_vec(
                r,
                "wschat_who_requests_total",
                "`who` requests that passed the rate limits and parsed, by outcome.",
                "outcome",
                &WhoOutcome::ALL.map(WhoOutcome::as_str),
            ),
            rooms_per_connection: histogram(
                r,
                "wschat_rooms_per_connection",
                "Rooms a connection holds, observed after each successful join.",
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            ),
            history_reads_shared: counter(
                r,
                "wschat_history_reads_shared_total",
                "Joins whose latest history came from a read of the room already under way for other joiners, not a read of their own (Redis broker).",
            ),
            direct_writes: counter(
                r,
                "wschat_fanout_direct_writes_total",
                "Chat messages the fan-out wrote straight to an idle socket (session.direct_writes), of wschat_messages_delivered_total.",
            ),
            fanout_pauses: counter(
                r,
                "wschat_fanout_pauses_total",
                "Pauses a room's fan-out made after a pass of 1 ms or more that carried two messages or more, so that what is published meanwhile goes out in one write per member (rooms.fanout_pause).",
            ),
        }
    }

    /// Counts a join attempt.
    pub fn join(&self, outcome: JoinOutcome) {
        self.joins.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Counts a delete.
    pub fn delete(&self, outcome: DeleteOutcome) {
        self.deletes.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Counts a `who`.
    pub fn who(&self, outcome: WhoOutcome) {
        self.who.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Counts a room left.
    pub fn leave(&self, reason: LeaveReason) {
        self.leaves.with_label_values(&[reason.as_str()]).inc();
    }
}
