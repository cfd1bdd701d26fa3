//! Local rooms, each connection's bounded queue (one encoded frame shared by every member), and token deadlines.

pub mod deadlines;
pub mod outbox;
pub mod presence;
pub mod rooms;
