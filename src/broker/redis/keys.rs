//! The names of a room's keys and of its channel: all carry the room's hash
//! tag `{room}`, so on a Redis Cluster they share one slot (see
//! [`super::script`] for what each holds).

/// The hash holding a room's `seq` and `epoch`.
pub fn meta_key(room: &str) -> String {
    format!("wschat:{{{room}}}:meta")
}

/// The stream holding a room's history.
pub fn log_key(room: &str) -> String {
    format!("wschat:{{{room}}}:log")
}

/// The hash of per-replica online counts.
pub fn online_key(room: &str) -> String {
    format!("wschat:{{{room}}}:online")
}

/// An idempotent publish's first answer in `room` (`scope`: hex SHA-256 of
/// the API key's name and the caller's key), kept for the window.
pub fn once_key(room: &str, scope: &str) -> String {
    format!("wschat:{{{room}}}:once:{scope}")
}

/// The pub/sub channel of a room.
pub fn channel(room: &str) -> String {
    format!("wschat:{{{room}}}:ev")
}

/// The room a channel name belongs to.
pub fn room_of_channel(channel: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(channel).ok()?;
    s.strip_prefix("wschat:{")?.strip_suffix("}:ev")
}
