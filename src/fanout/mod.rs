//! Local rooms, each connection's bounded queue (one encoded frame shared by
//! every member), the list of local connections, and token deadlines.

pub mod deadlines;
pub mod directory;
pub mod outbox;
pub mod presence;
pub mod rooms;
