//! Local rooms and each connection's bounded queue: one encoded frame shared by every member.

pub mod outbox;
pub mod presence;
pub mod rooms;
