//! Reads for backends: a room's history, its members, and the rooms with
//! members now, each across every replica.

use std::sync::Arc;

use serde_json::json;

use super::error::ApiError;
use super::input;
use super::{Answer, Call};
use crate::app::App;
use crate::broker::{Broker, Since};
use crate::metrics::BrokerOp;

/// `GET /api/v1/rooms/{room}/messages?since=&epoch=&limit=`: the newest
/// `limit` messages after `since`, oldest first (all of them when `epoch`
/// is given and is not the room's).
pub(super) async fn history(app: &Arc<App>, call: &Call) -> Result<Answer, ApiError> {
    let room = call.room()?;
    let q = input::history_query(call.query.as_deref())?;
    let since = Since {
        seq: q.since,
        epoch: q.epoch,
    };
    let history = app.broker.history(room, &since).await.map_err(|e| {
        app.metrics.broker_error(BrokerOp::History);
        tracing::warn!(error = %e, "api history unread");
        ApiError::Unavailable
    })?;
    let keep = q.limit.unwrap_or(usize::MAX);
    let skip = history.messages.len().saturating_sub(keep);
    // The stored JSON of each message, as clients receive it.
    let mut body =
        String::with_capacity(64 + history.messages.iter().map(|m| m.len() + 1).sum::<usize>());
    body.push_str(r#"{"epoch":"#);
    body.push_str(&json!(&*history.epoch).to_string());
    body.push_str(r#","messages":["#);
    for (i, m) in history.messages[skip..].iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(m);
    }
    body.push_str("]}");
    Ok(Answer {
        status: hyper::StatusCode::OK,
        body: Some(body),
    })
}

/// `GET /api/v1/rooms/{room}/members`: the online count and identified
/// users on every replica.
pub(super) async fn members(app: &Arc<App>, call: &Call) -> Result<Answer, ApiError> {
    let room = call.room()?;
    let m = app.broker.members(room).await.map_err(|e| {
        tracing::warn!(error = %e, "api members unread");
        ApiError::Unavailable
    })?;
    let members: Vec<_> = (m.listed.iter())
        .map(|l| json!({ "user": &*l.user, "name": &*l.name, "connections": l.connections }))
        .collect();
    Ok(Answer::ok(json!({
        "online": m.online,
        "members": members,
        "truncated": m.truncated,
    })))
}

/// `GET /api/v1/rooms?limit=&cursor=`: rooms with members now, by name.
pub(super) async fn rooms(app: &Arc<App>, call: &Call) -> Result<Answer, ApiError> {
    let q = input::rooms_query(call.query.as_deref())?;
    let page = app
        .broker
        .rooms(q.limit, q.cursor.as_deref())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "api rooms unread");
            ApiError::Unavailable
        })?;
    let rooms: Vec<_> = (page.rooms.iter())
        .map(|(room, online)| json!({ "room": &**room, "online": online }))
        .collect();
    Ok(Answer::ok(json!({
        "rooms": rooms,
        "next": page.next.as_deref(),
    })))
}
