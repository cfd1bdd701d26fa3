//! Local rooms, each connection's bounded queue (one encoded frame shared by
//! every member), the list of local connections, token deadlines, and each
//! room's identified users.

pub mod deadlines;
pub mod directory;
pub mod member;
pub mod outbox;
pub mod presence;
pub mod rooms;
pub mod runner;
pub mod users;
