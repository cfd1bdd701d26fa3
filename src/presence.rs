//! Presence events, coalesced per room so a join storm costs O(N), not O(N²).
//!
//! A room sends a presence event at once when it sent none in the last
//! `rooms.presence_interval`; otherwise joins and leaves are gathered and sent
//! as one event ("ana and 41 others joined") when the interval ends. With the
//! 100 ms default, 5,000 clients joining a room within a second cause about
//! ten broadcasts instead of 5,000, each with the current online count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::broker::Broker;
use crate::rooms::Room;

/// A change of a room's membership.
pub enum Change {
    Joined(Arc<str>),
    Left(Arc<str>),
}

#[derive(Default)]
struct Batch {
    first: Option<Arc<str>>,
    count: u32,
}

impl Batch {
    fn add(&mut self, name: Arc<str>) {
        self.first.get_or_insert(name);
        self.count += 1;
    }

    fn take(&mut self, verb: &str) -> Option<String> {
        let batch = std::mem::take(self);
        let first = batch.first?;
        Some(match batch.count {
            1 => format!("{first} {verb}"),
            2 => format!("{first} and 1 other {verb}"),
            n => format!("{first} and {} others {verb}", n - 1),
        })
    }
}

/// A room's presence state (kept inside the room, under its lock).
#[derive(Default)]
pub struct PresenceState {
    last_sent: Option<Instant>,
    joined: Batch,
    left: Batch,
    scheduled: bool,
}

/// What to do after noting a change.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send these events now.
    Now(Vec<String>),
    /// Flush at this instant (schedule it).
    At(Instant),
    /// A flush is already scheduled.
    Later,
}

impl PresenceState {
    /// Records a change and says when its event goes out.
    pub fn note(&mut self, change: Change, now: Instant, interval: Duration) -> Next {
        match change {
            Change::Joined(name) => self.joined.add(name),
            Change::Left(name) => self.left.add(name),
        }
        if self.scheduled {
            return Next::Later;
        }
        match self.last_sent {
            Some(last) if now.duration_since(last) < interval => {
                self.scheduled = true;
                Next::At(last + interval)
            }
            _ => Next::Now(self.flush(now)),
        }
    }

    /// Takes the gathered events.
    pub fn flush(&mut self, now: Instant) -> Vec<String> {
        self.scheduled = false;
        self.last_sent = Some(now);
        [self.joined.take("joined"), self.left.take("left")]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Announces a membership change in `room`, now or coalesced.
pub async fn announce(app: &Arc<App>, room: &Arc<Room>, change: Change) {
    let interval = app.settings.rooms.presence_interval;
    match room.with_presence(|p| p.note(change, Instant::now(), interval)) {
        Next::Now(events) => send(app, room, events).await,
        Next::Later => {}
        Next::At(when) => {
            let (app, room) = (app.clone(), room.clone());
            app.tasks.clone().spawn(async move {
                tokio::time::sleep_until(tokio::time::Instant::from_std(when)).await;
                let events = room.with_presence(|p| p.flush(Instant::now()));
                send(&app, &room, events).await;
            });
        }
    }
}

async fn send(app: &App, room: &Room, events: Vec<String>) {
    if events.is_empty() {
        return;
    }
    let online = room.local_online();
    if let Err(e) = app.broker.presence(&room.name, online, events).await {
        app.metrics.broker_error("presence");
        tracing::warn!(error = %e, "presence event not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_room_announces_at_once_and_a_storm_is_coalesced() {
        let mut p = PresenceState::default();
        let t0 = Instant::now();
        let iv = Duration::from_millis(100);
        assert_eq!(
            p.note(Change::Joined("ana".into()), t0, iv),
            Next::Now(vec!["ana joined".into()])
        );
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(
            p.note(Change::Joined("bo".into()), t1, iv),
            Next::At(t0 + iv)
        );
        for i in 0..41 {
            assert_eq!(
                p.note(Change::Joined(format!("u{i}").into()), t1, iv),
                Next::Later
            );
        }
        assert_eq!(p.note(Change::Left("ana".into()), t1, iv), Next::Later);
        assert_eq!(
            p.flush(t0 + iv),
            vec![
                "bo and 41 others joined".to_string(),
                "ana left".to_string()
            ]
        );
        let t2 = t0 + Duration::from_millis(300);
        assert_eq!(
            p.note(Change::Left("bo".into()), t2, iv),
            Next::Now(vec!["bo left".into()])
        );
    }
}
