//! The in-memory broker: one process, history in RAM, a new epoch per start.
//!
//! Each room's log has its own lock, held while the message is numbered,
//! stored and handed to the local rooms, so that members see a room's
//! messages in `seq` order. Fan-out only queues (never waits), so the lock is
//! short; other rooms are not blocked.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::broker::{Broker, BrokerError, History, Since};
use crate::fanout::rooms::{Delivery, Rooms};
use crate::metrics::Metrics;
use crate::protocol::event::{self, MessageHead};
use crate::ws::frame;

/// One life of a room's history. A pruned room comes back with a new epoch,
/// so `seq` restarting at 1 is never mistaken for old numbers.
struct RoomLog {
    epoch: Arc<str>,
    seq: u64,
    history: VecDeque<(u64, Arc<str>)>,
    touched: Option<Instant>,
}

/// History and fan-out for a single process.
pub struct MemoryBroker {
    logs: Mutex<HashMap<Arc<str>, Arc<Mutex<RoomLog>>>>,
    rooms: Arc<Rooms>,
    metrics: Arc<Metrics>,
    history_size: usize,
    history_ttl: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryBroker {
    /// A broker whose history starts empty.
    pub fn new(
        rooms: Arc<Rooms>,
        metrics: Arc<Metrics>,
        history_size: usize,
        history_ttl: Duration,
    ) -> Self {
        MemoryBroker {
            logs: Mutex::new(HashMap::new()),
            rooms,
            metrics,
            history_size,
            history_ttl,
        }
    }

    fn log(&self, room: &str) -> Arc<Mutex<RoomLog>> {
        let mut logs = lock(&self.logs);
        if let Some(log) = logs.get(room) {
            return log.clone();
        }
        let log = Arc::new(Mutex::new(RoomLog {
            epoch: uuid::Uuid::new_v4().to_string().into(),
            seq: 0,
            history: VecDeque::new(),
            touched: None,
        }));
        logs.insert(room.into(), log.clone());
        log
    }
}

impl Broker for MemoryBroker {
    async fn publish(
        &self,
        room: &str,
        from: &str,
        user: Option<&str>,
        text: &str,
        accepted_at: Instant,
    ) -> Result<u64, BrokerError> {
        let started = Instant::now();
        let head = MessageHead::new(room, from, user, text);
        let log = self.log(room);
        let mut log = lock(&log);
        log.seq += 1;
        let seq = log.seq;
        let json: Arc<str> = head.finish(seq).into();
        let frame = frame::text(&event::message(&json));
        log.history.push_back((seq, json));
        if log.history.len() > self.history_size {
            log.history.pop_front();
        } else {
            self.metrics.history_messages.inc();
        }
        log.touched = Some(accepted_at);
        self.metrics
            .broker_latency
            .observe(started.elapsed().as_secs_f64());
        let delivery = Delivery {
            seq: Some(seq),
            frame,
            accepted_at: Some(accepted_at),
        };
        let recipients = self.rooms.deliver(room, delivery);
        crate::telemetry::spans::fan_out_here(seq, recipients);
        Ok(seq)
    }

    async fn history(&self, room: &str, since: &Since) -> Result<History, BrokerError> {
        let log = self.log(room);
        let log = lock(&log);
        let same_epoch = since.epoch.as_deref().is_none_or(|e| e == &*log.epoch);
        let after = since.seq.filter(|_| same_epoch).unwrap_or(0);
        Ok(History {
            epoch: log.epoch.clone(),
            last_seq: log.seq,
            messages: log
                .history
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(_, json)| json.clone())
                .collect(),
        })
    }

    async fn presence(
        &self,
        room: &str,
        local_online: usize,
        events: Vec<String>,
    ) -> Result<(), BrokerError> {
        for text in events {
            let frame = frame::text(&event::presence(&text, local_online as u64));
            self.rooms.deliver(
                room,
                Delivery {
                    seq: None,
                    frame,
                    accepted_at: None,
                },
            );
        }
        Ok(())
    }

    async fn watch(&self, _room: &str) -> Result<(), BrokerError> {
        Ok(())
    }

    fn unwatch(&self, _room: &str) {}

    fn is_ready(&self) -> bool {
        true
    }

    fn prune(&self) {
        let now = Instant::now();
        let mut logs = lock(&self.logs);
        logs.retain(|room, log| {
            let log = lock(log);
            let idle = log
                .touched
                .is_none_or(|t| now.duration_since(t) > self.history_ttl);
            let keep = !idle || self.rooms.get(room).is_some();
            if !keep {
                self.metrics.history_messages.sub(log.history.len() as i64);
            }
            keep
        });
    }
}
