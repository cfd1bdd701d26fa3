//! The pub/sub receiver: the one task that hands this replica's rooms their
//! messages, in seq order, each exactly once.
//!
//! Per watched room it keeps the epoch and the last seq delivered. A message
//! at or below that seq is a duplicate and dropped; one further ahead means
//! pub/sub lost something (a reconnect, a resubscribe): the gap is read from
//! the room's log first. After a disconnection every room is marked stale and
//! backfilled as soon as Redis answers again. Backfills run inline, so live
//! messages queue behind them and order holds.
//!
//! redis-rs forwards pushes through a task of its own, so a push can reach
//! this queue after the reply of a command that Redis answered later. Nothing
//! here relies on push/reply order: a freshly subscribed room holds its
//! messages until its baseline arrives (at most [`super::track`]'s bound; past that it
//! drops them and reads the log from the baseline instead), and a history
//! read waits (a barrier) until the room has been delivered up to the seq the
//! history ends at. No joiner reads history before its room's baseline is
//! here (see [`super::subs`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use redis::{PushInfo, PushKind, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::script::{self, Envelope};
use super::track::{Early, Track};
use super::Shared;
use crate::broker::Since;
use crate::fanout::rooms::Delivery;
use crate::protocol::event;
use crate::telemetry::spans;
use crate::ws::frame;

/// How often stale rooms are retried while Redis is up.
const RETRY: Duration = Duration::from_millis(500);
/// What the receiver is told, in order.
pub(super) enum Event {
    /// A push from Redis: a pub/sub message, or the connection dropped.
    Push(PushInfo),
    /// About to subscribe this room: start a clean track.
    Fresh(Arc<str>),
    /// Where a freshly subscribed room stood right after subscribing.
    Seen {
        room: Arc<str>,
        epoch: Arc<str>,
        seq: u64,
    },
    /// Unsubscribed: forget the room.
    Gone(Arc<str>),
    /// Redis answers again after an outage: backfill stale rooms.
    Resync,
    /// Every room may have missed messages (the Sentinels named a new
    /// master): mark them all stale.
    Lost,
    /// Redis answers again after an outage. On a cluster, a failover may
    /// have left sharded subscriptions behind on the dead master: subscribe
    /// every carried room again, then read every room's log.
    Recovered,
    /// Answer once `room` has been delivered up to `seq` of `epoch`.
    Barrier {
        room: Arc<str>,
        epoch: Arc<str>,
        seq: u64,
        done: oneshot::Sender<()>,
    },
}

/// A history read waiting for its room to catch up.
struct Waiter {
    room: Arc<str>,
    epoch: Arc<str>,
    seq: u64,
    done: oneshot::Sender<()>,
}

/// Runs until stopped.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Event>,
    stop: CancellationToken,
) {
    let mut tracks: HashMap<Arc<str>, Track> = HashMap::new();
    let mut waiters: Vec<Waiter> = Vec::new();
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            e = rx.recv() => match e {
                Some(e) => e,
                None => return,
            },
            _ = retry.tick() => Event::Resync,
        };
        match event {
            Event::Push(info) => push(&shared, &mut tracks, info).await,
            Event::Fresh(room) => {
                tracks.insert(room, Track::default());
            }
            Event::Seen { room, epoch, seq } => {
                if let Some(t) = tracks.get_mut(&room) {
                    if t.last.is_none() {
                        t.epoch = Some(epoch);
                        t.last = Some(seq);
                        // Held messages were dropped, or pub/sub broke
                        // meanwhile: the log has what came after the baseline.
                        if t.stale {
                            backfill(&shared, &room, t).await;
                        }
                        for e in std::mem::take(&mut t.early) {
                            message(&shared, &room, t, e).await;
                        }
                    }
                }
            }
            Event::Gone(room) => {
                tracks.remove(&room);
            }
            Event::Barrier {
                room,
                epoch,
                seq,
                done,
            } => waiters.push(Waiter {
                room,
                epoch,
                seq,
                done,
            }),
            Event::Recovered => {
                if shared.conn.sharded() {
                    tokio::spawn(super::subs::resubscribe(shared.clone()));
                }
            }
            Event::Lost => {
                for t in tracks.values_mut() {
                    t.stale = true;
                }
            }
            Event::Resync => {
                if !shared.status.is_up() {
                    continue;
                }
                for (room, track) in tracks.iter_mut().filter(|(_, t)| t.stale) {
                    if !backfill(&shared, room, track).await {
                        break;
                    }
                }
            }
        }
        if !waiters.is_empty() {
            for w in std::mem::take(&mut waiters) {
                let ready = tracks
                    .get(&w.room)
                    .is_none_or(|t| t.caught_up(&w.epoch, w.seq));
                if ready {
                    let _ = w.done.send(());
                } else if !w.done.is_closed() {
                    waiters.push(w);
                }
            }
        }
    }
}

async fn push(shared: &Arc<Shared>, tracks: &mut HashMap<Arc<str>, Track>, info: PushInfo) {
    match info.kind {
        PushKind::Disconnection => {
            for t in tracks.values_mut() {
                t.stale = true;
            }
        }
        // Redis drops the sharded subscriptions of a slot that moved away (a
        // reshard, a failover); redis-rs then forgets them too. Subscribe
        // again where the slot lives now; the log covers the gap. A room
        // this replica unsubscribed has no track any more.
        PushKind::SUnsubscribe => {
            let Some(Value::BulkString(channel)) = info.data.first() else {
                return;
            };
            if super::control::is_control(shared, channel) {
                tokio::spawn(super::subs::again(shared.clone(), None));
            } else if let Some((room, track)) = script::room_of_channel(channel)
                .and_then(|room| tracks.get_key_value(room).map(|(k, _)| k.clone()))
                .and_then(|room| tracks.get_mut(&room).map(|t| (room, t)))
            {
                track.stale = true;
                tokio::spawn(super::subs::again(shared.clone(), Some(room)));
            }
        }
        // SMessage: sharded pub/sub, on a cluster.
        PushKind::Message | PushKind::SMessage => {
            let [Value::BulkString(channel), Value::BulkString(payload)] = &info.data[..] else {
                return;
            };
            if super::control::on_push(shared, channel, payload) {
                return;
            }
            let Some(room) = script::room_of_channel(channel) else {
                return;
            };
            // Rooms this replica no longer watches are ignored.
            let Some(room) = tracks.get_key_value(room).map(|(k, _)| k.clone()) else {
                return;
            };
            let Some(track) = tracks.get_mut(&room) else {
                return;
            };
            match Envelope::parse(payload) {
                Some(Envelope::Message {
                    seq,
                    epoch,
                    accepted_at_us,
                    trace,
                    json,
                }) => {
                    let early = Early {
                        seq,
                        epoch: epoch.into(),
                        at: instant_of(accepted_at_us),
                        json: json.into(),
                    };
                    // Continue the publisher's trace (if sampled) around this
                    // replica's fan-out.
                    let span = spans::receive_span("redis", Some(trace).filter(|t| !t.is_empty()));
                    message(shared, &room, track, early).instrument(span).await;
                }
                Some(Envelope::Presence { online, text, .. }) => {
                    let json = event::presence(&room, text, online);
                    shared.rooms.enqueue_event(&room, &json).spawn();
                }
                Some(Envelope::Deleted { seq, id }) => {
                    let json = event::deleted(&room, id, seq);
                    shared.rooms.enqueue_event(&room, &json).spawn();
                }
                None => tracing::warn!("malformed envelope on a room channel"),
            }
        }
        _ => {}
    }
}

/// Delivers a live message unless it is a duplicate; fills a gap before it.
/// Before the room's baseline is known the message is kept for later.
async fn message(shared: &Shared, room: &Arc<str>, track: &mut Track, m: Early) {
    let Some(last) = track.last else {
        track.hold(m);
        return;
    };
    let same_epoch = track.epoch.as_deref() == Some(&*m.epoch);
    let gap = track.stale || !same_epoch || m.seq > last + 1;
    if gap && !backfill(shared, room, track).await {
        // Kept in the log: the next resync delivers it, in order.
        return;
    }
    if track.epoch.as_deref() == Some(&*m.epoch) && track.last.is_some_and(|l| m.seq > l) {
        deliver(shared, room, m.seq, &m.json, m.at);
        track.last = Some(m.seq);
    }
}

/// Reads what the room's log holds after the track's last seq (all of it if
/// the epoch changed) and delivers it. False if Redis could not answer.
async fn backfill(shared: &Shared, room: &Arc<str>, track: &mut Track) -> bool {
    let Some(last) = track.last else {
        // No baseline yet, so nothing to read from: it stays stale, and is
        // backfilled once the baseline comes.
        return true;
    };
    let since = Since {
        seq: Some(last),
        epoch: track.epoch.as_deref().map(str::to_string),
    };
    let read = match shared
        .read(room, &since, shared.limits.rooms.policy(room).history)
        .await
    {
        Ok(read) => read,
        Err(e) => {
            shared
                .metrics
                .broker_error(crate::metrics::BrokerOp::History);
            tracing::debug!(error = %e, "backfill failed");
            track.stale = true;
            return false;
        }
    };
    let mut last = last;
    if track.epoch.as_deref() == Some(&*read.epoch) && read.last_seq < last {
        if let Err(e) =
            super::rollback::repair(shared, room, &read.epoch, read.last_seq, last).await
        {
            // Stays stale: tried again on the next resync, before anything
            // newer is trusted.
            tracing::debug!(error = %e, "cannot repair a log that went back");
            track.stale = true;
            return false;
        }
    }
    if track.epoch.as_deref() != Some(&*read.epoch) {
        tracing::warn!(%room, "room history was lost in redis; new epoch");
        track.epoch = Some(read.epoch);
        last = 0;
    }
    for (seq, json) in read.entries {
        if seq > last {
            deliver(shared, room, seq, &json, None);
            last = seq;
        }
    }
    // Messages trimmed from the log before we could read them are gone.
    track.last = Some(last.max(read.last_seq));
    track.stale = false;
    true
}

/// Queues a message for the room's members; a task writes it, so that this
/// one receiving task never waits on a fan-out.
fn deliver(shared: &Shared, room: &str, seq: u64, json: &str, at: Option<Instant>) {
    let delivery = Delivery {
        seq: Some(seq),
        frame: frame::text(&event::message(json)),
        accepted_at: at,
    };
    let queued = shared.rooms.enqueue(room, delivery);
    spans::fan_out_here(seq, queued.recipients);
    queued.spawn();
}

/// The local instant of a Unix-µs timestamp (clocks of one host agree).
fn instant_of(unix_us: u64) -> Option<Instant> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_micros() as u64;
    Instant::now().checked_sub(Duration::from_micros(now.saturating_sub(unix_us)))
}
