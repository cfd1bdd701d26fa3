//! Announcing joins and leaves: a room's pacing state (in the room, see
//! [`crate::fanout::presence`]) says whether an event goes out now or later;
//! this sends it through the broker to every replica, with the room's
//! identified users that changed since the last event (for `who`); in a
//! namespace with `presence = false` only the count and the users are sent.

use std::sync::Arc;
use std::time::Instant;

use crate::app::App;
use crate::broker::Broker;
use crate::fanout::presence::{Next, Pacing};
use crate::fanout::rooms::Room;
use crate::metrics::BrokerOp;

pub use crate::fanout::presence::Change;

/// Announces a membership change in `room`, now or coalesced.
pub async fn announce(app: &Arc<App>, room: &Arc<Room>, change: Change) {
    let pacing = Pacing {
        base: app.settings.rooms.presence_interval,
        max: app.settings.rooms.presence_max_interval,
    };
    match room.with_presence(|p| p.note(change, Instant::now(), pacing)) {
        Next::Now(events) => send(app, room, events).await,
        Next::Later => {}
        Next::At(when) => {
            let (app, room) = (app.clone(), room.clone());
            app.tasks.clone().spawn(async move {
                tokio::time::sleep_until(tokio::time::Instant::from_std(when)).await;
                let events = room.with_presence(|p| p.flush_coalesced(Instant::now(), pacing));
                send(&app, &room, events).await;
            });
        }
    }
}

async fn send(app: &App, room: &Room, mut events: Vec<String>) {
    if events.is_empty() {
        return;
    }
    // A namespace without presence sends no events, but the room's online
    // count is still kept (the broker's refresh path).
    if !app.settings.rooms.policy(&room.name).presence {
        events.clear();
    }
    let online = room.local_online();
    // Batched with the event: a join storm costs no Redis call per join.
    let users = room.take_users(false);
    if let Err(e) = app.broker.presence(&room.name, online, users, events).await {
        app.metrics.broker_error(BrokerOp::Presence);
        tracing::warn!(error = %e, "presence event not sent");
    }
}
