//! Which rooms this replica carries: each room's subscription, from the
//! joiner that asks for it to the leave that ends it.
//!
//! A room's subscription is in one of three phases, kept per room while it
//! has local members (or a subscription under way):
//!
//! - **Subscribing**: SUBSCRIBE, then the baseline read (the room's seq right
//!   after it), then the baseline handed to the receiver. Every joiner of the
//!   room waits, the first one included, so none reads its history before
//!   pub/sub carries every later message here.
//! - **Ready**: joiners go on at once (one map lookup, nothing sent).
//! - **Failed**: the attempt's waiting joiners get the error (the session
//!   closes them with 1013); the next joiner starts a new attempt.
//!
//! One task applies the attempts and the unsubscribes: each room's in arrival
//! order, so an UNSUBSCRIBE can never overtake a later SUBSCRIBE of the same
//! room, and different rooms' side by side (whatever is queued when the task
//! looks, up to [`BATCH`] commands), so a replica that many rooms reach at once
//! (a restart, a deploy) does not carry them one round trip at a time. A failed
//! attempt leaves no half state: the receiver forgets the room's track (and
//! with it any messages held for the missing baseline).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::receiver::Event;
use super::{script, Shared};
use crate::broker::{BrokerError, Since};
use crate::metrics::BrokerOp;

/// How long a joiner waits for its room's subscription: the batches queued
/// before it, each at most two commands of 1 s (`OP_TIMEOUT`).
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// Subscription changes applied side by side at most. One round takes two
/// round trips whatever its size; 100,000 clients reconnecting into 1,000
/// rooms made a queue of 1,000 attempts that, one at a time, outlasted
/// `JOIN_WAIT` for half the joiners (issue 20's scale-100k run).
const BATCH: usize = 256;
/// A subscription Redis dropped is tried again this many times, this far
/// apart (a slot move or a failover settles within seconds).
const AGAIN_TRIES: usize = 20;
const AGAIN_WAIT: Duration = Duration::from_millis(250);

/// Where a room's subscription stands.
#[derive(Clone, Debug)]
pub(super) enum Phase {
    Subscribing,
    Ready,
    Failed(Arc<BrokerError>),
}

/// A subscription change, applied in arrival order by one task.
pub(super) enum SubCmd {
    /// Subscribe, read the baseline, and settle the room's phase.
    Watch(Arc<str>),
    /// Unsubscribe unless the room got local members again.
    Unwatch(Arc<str>),
}

/// One room's entry. A carried room keeps no channel: it may stay carried
/// for days, and with one member per room it would cost as much as a
/// connection's idle state.
enum Entry {
    Ready,
    /// An attempt under way, or the last one failed: the phase, for the
    /// joiners waiting on it.
    Settling(watch::Sender<Phase>),
}

type Map = HashMap<Arc<str>, Entry>;

/// Every room this replica subscribes to or is subscribing to.
#[derive(Default)]
pub(super) struct Subs {
    rooms: Mutex<Map>,
}

impl Subs {
    fn lock(&self) -> MutexGuard<'_, Map> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rooms whose subscription is ready.
    pub(super) fn ready(&self) -> Vec<Arc<str>> {
        self.lock()
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Ready))
            .map(|(room, _)| room.clone())
            .collect()
    }

    /// Settles the attempt under way for `room`. Waiters still see `Ready`
    /// after its channel is dropped.
    fn settle(&self, room: &str, phase: Phase) {
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(room) else {
            return;
        };
        if let Entry::Settling(tx) = entry {
            tx.send_replace(phase.clone());
        }
        if matches!(phase, Phase::Ready) {
            *entry = Entry::Ready;
        }
    }
}

/// Returns once `room` is carried here (subscribed, its baseline with the
/// receiver); starts an attempt when there is none under way. The caller is
/// already one of the room's local members, so the room cannot be
/// unsubscribed under it (see [`unwatch`]).
pub(super) async fn carry(
    shared: &Shared,
    cmds: &mpsc::UnboundedSender<SubCmd>,
    room: &str,
) -> Result<(), BrokerError> {
    let phase = {
        let mut rooms = shared.subs.lock();
        match rooms.get_key_value(room) {
            Some((_, Entry::Ready)) => return Ok(()),
            Some((_, Entry::Settling(tx))) if matches!(*tx.borrow(), Phase::Subscribing) => {
                tx.subscribe()
            }
            // The last attempt failed: this joiner starts another.
            Some((room, Entry::Settling(tx))) => {
                tx.send_replace(Phase::Subscribing);
                attempt(cmds, room.clone())?;
                tx.subscribe()
            }
            None => {
                let room: Arc<str> = room.into();
                let (tx, rx) = watch::channel(Phase::Subscribing);
                rooms.insert(room.clone(), Entry::Settling(tx));
                attempt(cmds, room)?;
                rx
            }
        }
    };
    settled(phase).await
}

/// Asks the task for an attempt. Called under the map's lock, so the task
/// sees attempts in the order the phases changed.
fn attempt(cmds: &mpsc::UnboundedSender<SubCmd>, room: Arc<str>) -> Result<(), BrokerError> {
    cmds.send(SubCmd::Watch(room))
        .map_err(|_| BrokerError::Stopped)
}

/// Waits for the attempt under way to settle. A joiner that misses a failure
/// because the next joiner already retried waits for that attempt instead.
async fn settled(mut phase: watch::Receiver<Phase>) -> Result<(), BrokerError> {
    let settled = phase.wait_for(|p| !matches!(p, Phase::Subscribing));
    match tokio::time::timeout(JOIN_WAIT, settled).await {
        Ok(Ok(p)) => match &*p {
            Phase::Failed(e) => Err(BrokerError::NotCarried(e.clone())),
            _ => Ok(()),
        },
        Ok(Err(_)) => Err(BrokerError::Stopped),
        Err(_) => Err(BrokerError::Timeout),
    }
}

/// Applies subscription changes: what is queued, a batch at a time, each
/// room's changes in order and the rooms side by side.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<SubCmd>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            () = stop.cancelled() => return,
            n = rx.recv_many(&mut batch, BATCH) => n,
        };
        if n == 0 {
            return;
        }
        let mut rounds = JoinSet::new();
        for (_, cmds) in by_room(batch.drain(..)) {
            let shared = shared.clone();
            rounds.spawn(async move {
                for cmd in cmds {
                    apply(&shared, cmd).await;
                }
            });
        }
        // A task that panicked only loses its own rooms' round: their
        // joiners time out (1013) and the next joiner tries again.
        while rounds.join_next().await.is_some() {}
    }
}

/// `cmds` grouped by room, each group in arrival order.
fn by_room(cmds: impl Iterator<Item = SubCmd>) -> Vec<(Arc<str>, Vec<SubCmd>)> {
    let mut groups: Vec<(Arc<str>, Vec<SubCmd>)> = Vec::new();
    let mut at: HashMap<Arc<str>, usize> = HashMap::new();
    for cmd in cmds {
        let room = match &cmd {
            SubCmd::Watch(room) | SubCmd::Unwatch(room) => room.clone(),
        };
        match at.get(&room) {
            Some(&i) => groups[i].1.push(cmd),
            None => {
                at.insert(room.clone(), groups.len());
                groups.push((room, vec![cmd]));
            }
        }
    }
    groups
}

async fn apply(shared: &Shared, cmd: SubCmd) {
    match cmd {
        SubCmd::Watch(room) => {
            let phase = match subscribe(shared, &room).await {
                Ok(()) => Phase::Ready,
                Err(e) => {
                    shared.metrics.broker_error(BrokerOp::Subscribe);
                    tracing::warn!(error = %e, "cannot carry room");
                    Phase::Failed(Arc::new(e))
                }
            };
            shared.subs.settle(&room, phase);
        }
        SubCmd::Unwatch(room) => unwatch(shared, room).await,
    }
}

/// One attempt: a clean track, SUBSCRIBE, then the baseline. On failure the
/// receiver drops the track (a baseline never comes; nothing is held for
/// it); a channel left subscribed is ignored until the next attempt or the
/// room's unsubscribe.
async fn subscribe(shared: &Shared, room: &Arc<str>) -> Result<(), BrokerError> {
    let events = &shared.status.events;
    events
        .send(Event::Fresh(room.clone()))
        .map_err(|_| BrokerError::Stopped)?;
    let subscribed = shared
        .call(shared.conn.subscribe(&script::channel(room)))
        .await;
    // Where the room stands now. Every message after this seq comes on
    // pub/sub; the receiver delivers from here.
    let baseline = match subscribed {
        Ok(()) => shared.read(room, &Since::default(), 0).await,
        Err(e) => Err(e),
    };
    match baseline {
        Ok(read) => {
            // Before the phase turns Ready, so the receiver has the baseline
            // before any joiner's history barrier.
            let _ = events.send(Event::Seen {
                room: room.clone(),
                epoch: read.epoch,
                seq: read.last_seq,
            });
            Ok(())
        }
        Err(e) => {
            let _ = events.send(Event::Gone(room.clone()));
            Err(e)
        }
    }
}

/// The room lost its last local member: forget it and UNSUBSCRIBE. The check
/// for members and the removal happen under the map's lock, and a joiner
/// joins the room before it looks there: either this sees the joiner and
/// keeps the room, or the joiner finds no entry and starts an attempt, queued
/// behind this UNSUBSCRIBE.
async fn unwatch(shared: &Shared, room: Arc<str>) {
    {
        let mut rooms = shared.subs.lock();
        if shared.rooms.get(&room).is_some() || rooms.remove(&room).is_none() {
            return;
        }
    }
    let _ = shared.status.events.send(Event::Gone(room.clone()));
    if let Err(e) = shared
        .call(shared.conn.unsubscribe(&script::channel(&room)))
        .await
    {
        // Still subscribed: its messages are ignored (no track), and the next
        // attempt subscribes again.
        shared.metrics.broker_error(BrokerOp::Subscribe);
        tracing::debug!(error = %e, "unsubscribe failed");
    }
}

/// Subscribes every carried room and the control channels again (a
/// cluster after a failover, or a fresh cluster connection), then has every
/// room read its log for what came meanwhile. SSUBSCRIBE to a channel
/// already subscribed changes nothing.
pub(super) async fn resubscribe(shared: Arc<Shared>) {
    let rooms = shared.subs.ready();
    let mut failed = 0usize;
    for room in &rooms {
        if shared
            .call(shared.conn.subscribe(&script::channel(room)))
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    super::control::subscribe_all(&shared).await;
    if failed > 0 {
        // The next recovery tries again; until then their messages come
        // from the log when a gap shows.
        shared.metrics.broker_error(BrokerOp::Subscribe);
        tracing::warn!(
            failed,
            rooms = rooms.len(),
            "rooms not subscribed again after an outage"
        );
    }
    let _ = shared.status.events.send(Event::Lost);
    let _ = shared.status.events.send(Event::Resync);
}

/// Subscribes `room` again (or the control channels, for `None`) after
/// Redis dropped the subscription, trying a few times while the cluster
/// settles; then has stale rooms read their logs.
pub(super) async fn again(shared: Arc<Shared>, room: Option<Arc<str>>) {
    for _ in 0..AGAIN_TRIES {
        let done = match &room {
            Some(room) => shared
                .call(shared.conn.subscribe(&script::channel(room)))
                .await
                .is_ok(),
            None => super::control::subscribe_all(&shared).await,
        };
        if done {
            let _ = shared.status.events.send(Event::Resync);
            return;
        }
        tokio::time::sleep(AGAIN_WAIT).await;
    }
    shared.metrics.broker_error(BrokerOp::Subscribe);
    tracing::warn!("a dropped subscription could not be made again; the next recovery tries");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_rooms_drop_their_channel_and_waiters_still_see_ready() {
        let subs = Subs::default();
        let (b, waiter) = watch::channel(Phase::Subscribing);
        let failed = Phase::Failed(Arc::new(BrokerError::Timeout));
        subs.lock().insert("a".into(), Entry::Ready);
        subs.lock().insert("b".into(), Entry::Settling(b));
        subs.lock()
            .insert("c".into(), Entry::Settling(watch::channel(failed).0));
        assert_eq!(subs.ready(), vec![Arc::<str>::from("a")]);
        subs.settle("b", Phase::Ready);
        let mut ready = subs.ready();
        ready.sort();
        assert_eq!(ready, vec![Arc::<str>::from("a"), Arc::from("b")]);
        assert!(matches!(subs.lock().get("b"), Some(Entry::Ready)));
        assert!(
            settled(waiter).await.is_ok(),
            "its channel is gone, not its answer"
        );
        let (c, waiter) = watch::channel(Phase::Subscribing);
        subs.lock().insert("c".into(), Entry::Settling(c));
        subs.settle("c", Phase::Failed(Arc::new(BrokerError::Timeout)));
        let answer = settled(waiter).await;
        assert!(
            matches!(answer, Err(BrokerError::NotCarried(_))),
            "{answer:?}"
        );
        assert!(subs.ready().len() == 2, "a failed room is not ready");
    }
}
