//! Reading what a caller sent: JSON bodies and query strings, checked into
//! typed values or refused with the error that says why. Pure functions of
//! bytes (the fuzz target calls them directly).

use serde::Deserialize;

use super::error::ApiError;
use crate::auth::grant::{display_name, valid_user};
use crate::protocol::client::{strip_deceptive, valid_room};

/// Most rooms one `POST /api/v1/publish` names.
pub const MAX_ROOMS: usize = 100;
/// Longest `idempotencyKey`.
const MAX_IDEMPOTENCY_KEY: usize = 128;
/// Longest disconnect reason, in characters.
const MAX_REASON_CHARS: usize = 120;
/// Largest `limit` of a listing.
pub const MAX_LIMIT: usize = 1000;
/// `GET /api/v1/rooms` without a `limit`.
pub const DEFAULT_ROOMS_LIMIT: usize = 100;

/// A checked message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    /// Cleaned; `None`: the API key's name.
    pub from: Option<String>,
    pub user: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Both publish bodies: `rooms` only in the many-rooms one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MessageBody {
    #[serde(default)]
    rooms: Option<Vec<String>>,
    text: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KickBody {
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    #[serde(default)]
    reason: Option<String>,
}

/// A JSON object of type `T` (serde would also take an array for a struct).
fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadJson);
    }
    serde_json::from_slice(body).map_err(|_| ApiError::BadJson)
}

/// A room name from a path or a body.
pub fn room(raw: &str) -> Result<&str, ApiError> {
    valid_room(raw).then_some(raw).ok_or(ApiError::BadRoom)
}

/// A user id from a path or a body.
pub fn user(raw: &str) -> Result<&str, ApiError> {
    valid_user(raw).then_some(raw).ok_or(ApiError::BadUser)
}

fn message(
    text: String,
    from: Option<String>,
    user_id: Option<String>,
    key: Option<String>,
    max_chars: usize,
) -> Result<Message, ApiError> {
    let text = strip_deceptive(&text).trim().to_owned();
    if text.is_empty() {
        return Err(ApiError::Empty);
    }
    if text.chars().count() > max_chars {
        return Err(ApiError::TextTooLong);
    }
    let from = match from {
        Some(raw) => Some(display_name(&raw).ok_or(ApiError::BadFrom)?),
        None => None,
    };
    if let Some(u) = &user_id {
        user(u)?;
    }
    if let Some(k) = &key {
        let printable = k.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY || !printable {
            return Err(ApiError::BadIdempotencyKey);
        }
    }
    Ok(Message {
        text,
        from,
        user: user_id,
        idempotency_key: key,
    })
}

/// `POST /api/v1/rooms/{room}/messages`.
pub fn publish_body(body: &[u8], max_chars: usize) -> Result<Message, ApiError> {
    let b: MessageBody = json(body)?;
    if b.rooms.is_some() {
        return Err(ApiError::BadJson);
    }
    message(b.text, b.from, b.user, b.idempotency_key, max_chars)
}

/// `POST /api/v1/publish`: the distinct rooms, in order, and the message.
pub fn publish_many_body(
    body: &[u8],
    max_chars: usize,
) -> Result<(Vec<String>, Message), ApiError> {
    let b: MessageBody = json(body)?;
    let rooms = b.rooms.ok_or(ApiError::BadJson)?;
    if rooms.is_empty() || rooms.len() > MAX_ROOMS {
        return Err(ApiError::BadRooms);
    }
    for (i, r) in rooms.iter().enumerate() {
        room(r)?;
        if rooms[..i].contains(r) {
            return Err(ApiError::BadRooms);
        }
    }
    let message = message(b.text, b.from, b.user, b.idempotency_key, max_chars)?;
    Ok((rooms, message))
}

/// `POST /api/v1/rooms/{room}/kick`: the user to remove.
pub fn kick_body(body: &[u8]) -> Result<String, ApiError> {
    let b: KickBody = json(body)?;
    user(&b.user)?;
    Ok(b.user)
}

/// `POST /api/v1/users/{user}/disconnect`: the close reason (may be empty).
pub fn disconnect_body(body: &[u8]) -> Result<String, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    let b: DisconnectBody = json(body)?;
    let reason = strip_deceptive(b.reason.as_deref().unwrap_or_default())
        .trim()
        .to_owned();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::BadReason);
    }
    Ok(reason)
}

/// `GET /api/v1/rooms/{room}/messages`'s query.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub since: Option<u64>,
    pub epoch: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /api/v1/rooms`'s query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomsQuery {
    pub limit: usize,
    pub cursor: Option<String>,
}

/// Splits `a=1&b=2` into decoded pairs: `+` is a space, `%XX` must be valid
/// and the result UTF-8, and no key may repeat.
fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k)?, decode(v)?);
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(ApiError::BadQuery);
        }
        out.push((k, v));
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, ApiError> {
    let s = s.replace('+', " ");
    super::route::percent_decode(&s).ok_or(ApiError::BadQuery)
}

fn limit(v: &str) -> Result<usize, ApiError> {
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::BadQuery),
    }
}

/// Parses a history query.
pub fn history_query(query: Option<&str>) -> Result<HistoryQuery, ApiError> {
    let mut q = HistoryQuery::default();
    for (k, v) in pairs(query)? {
        match k.as_str() {
            "since" => q.since = Some(v.parse().map_err(|_| ApiError::BadQuery)?),
            "epoch" if !v.is_empty() && v.len() <= 64 => q.epoch = Some(v),
            "limit" => q.limit = Some(limit(&v)?),
            _ => return Err(ApiError::BadQuery),
        }
    }
    Ok(q)
}

/// Parses a room listing query.
pub fn rooms_query(query: Option<&str>) -> Result<RoomsQuery, ApiError> {
    let mut q = RoomsQuery {
        limit: DEFAULT_ROOMS_LIMIT,
        cursor: None,
    };
    for (k, v) in pairs(query)? {
        match k.as_str() {
            "limit" => q.limit = limit(&v)?,
            "cursor" if valid_room(&v) => q.cursor = Some(v),
            _ => return Err(ApiError::BadQuery),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests;
