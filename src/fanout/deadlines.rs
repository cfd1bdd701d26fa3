//! Token deadlines of every local connection that has one, in one ordered
//! queue served by one task: the `expiring` warning before a token's `exp`,
//! and the 4001 close at `exp` plus leeway.
//!
//! One shared queue instead of a timer in each connection: a connection
//! without an expiring token (static tokens, the common case) pays nothing,
//! and one with one pays two queue entries, not a timer future in its task.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::fanout::rooms::Member;
use crate::protocol::close::CloseCode;
use crate::protocol::event;
use crate::ws::frame;
use crate::ws::transport::Outgoing;

/// The longest the task sleeps without looking again: a wall clock that
/// jumps is noticed within this.
const LONGEST_NAP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Warn,
    Close,
}

/// When a connection's token expires, and what the server does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The token's `exp`.
    pub expires: SystemTime,
    /// When `expiring` is sent (`exp` − `auth.expiry_warning`).
    pub warn_at: SystemTime,
    /// When the connection is closed with 4001 (`exp` + leeway).
    pub close_at: SystemTime,
}

impl Expiry {
    /// The deadlines of a token expiring at `expires`.
    pub fn new(expires: SystemTime, warning: Duration, leeway: Duration) -> Expiry {
        Expiry {
            expires,
            warn_at: expires.checked_sub(warning).unwrap_or(expires),
            close_at: expires + leeway,
        }
    }
}

/// When, whose, and which deadline: the queue's order.
type Key = (SystemTime, u64, Kind);

struct Entry {
    member: Weak<Member>,
    expires: SystemTime,
}

#[derive(Default)]
struct Queue {
    due: BTreeMap<Key, Entry>,
    /// Each member's scheduled deadlines, to take them out again.
    by_member: HashMap<u64, Expiry>,
}

/// The queue and the wake-up of the task that serves it.
#[derive(Default)]
pub struct Deadlines {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Schedules `member`'s warning and close, replacing what it had.
    pub fn schedule(&self, member: &Arc<Member>, expiry: Expiry) {
        let mut q = self.lock();
        if let Some(old) = q.by_member.insert(member.id, expiry) {
            remove(&mut q, member.id, old);
        }
        let first = q.due.keys().next().map(|k| k.0);
        for (at, kind) in [(expiry.warn_at, Kind::Warn), (expiry.close_at, Kind::Close)] {
            let entry = Entry {
                member: Arc::downgrade(member),
                expires: expiry.expires,
            };
            q.due.insert((at, member.id, kind), entry);
        }
        drop(q);
        if first.is_none_or(|f| expiry.warn_at < f) {
            self.wake.notify_one();
        }
    }

    /// Forgets `member`'s deadlines (it closed, or its token no longer expires).
    pub fn cancel(&self, member_id: u64) {
        let mut q = self.lock();
        if let Some(old) = q.by_member.remove(&member_id) {
            remove(&mut q, member_id, old);
        }
    }

    /// Connections with a deadline scheduled.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_member.len()
    }

    /// Whether no connection has a deadline.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Serves deadlines as they come due, until `stopped`.
    pub async fn run(&self, stopped: CancellationToken) {
        loop {
            let now = SystemTime::now();
            let (due, next) = self.take_due(now);
            for ((_, _, kind), entry) in due {
                let Some(member) = entry.member.upgrade() else {
                    continue;
                };
                match kind {
                    Kind::Warn => {
                        member.outbox.push(Outgoing {
                            frame: frame::text(&event::expiring(entry.expires)),
                            accepted_at: None,
                            latest: 0,
                        });
                    }
                    Kind::Close => member.outbox.request_close(CloseCode::TokenExpired),
                }
            }
            let nap = next
                .map(|at| at.duration_since(now).unwrap_or_default())
                .unwrap_or(LONGEST_NAP)
                .min(LONGEST_NAP);
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                () = self.wake.notified() => {}
                () = stopped.cancelled() => return,
            }
        }
    }

    /// Takes every entry due at `now`; also returns when the next one is.
    fn take_due(&self, now: SystemTime) -> (Vec<(Key, Entry)>, Option<SystemTime>) {
        let mut q = self.lock();
        let mut due = Vec::new();
        while let Some(first) = q.due.first_entry() {
            if first.key().0 > now {
                break;
            }
            let (key, entry) = first.remove_entry();
            if key.2 == Kind::Close {
                q.by_member.remove(&key.1);
            }
            due.push((key, entry));
        }
        let next = q.due.keys().next().map(|k| k.0);
        (due, next)
    }
}

fn remove(q: &mut Queue, id: u64, old: Expiry) {
    q.due.remove(&(old.warn_at, id, Kind::Warn));
    q.due.remove(&(old.close_at, id, Kind::Close));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credential;
    use crate::fanout::outbox::Outbox;

    fn member(id: u64) -> Arc<Member> {
        Arc::new(Member::new(
            id,
            "ana".into(),
            "lobby".into(),
            Credential::Static(crate::auth::digest("t")),
            None,
            Outbox::new(8, 8),
        ))
    }

    #[test]
    fn due_entries_come_out_in_order_and_rescheduling_replaces() {
        let d = Deadlines::default();
        let t0 = SystemTime::now();
        let (a, b) = (member(1), member(2));
        let secs = Duration::from_secs;
        d.schedule(&a, Expiry::new(t0 + secs(100), secs(60), secs(5)));
        d.schedule(&b, Expiry::new(t0 + secs(10), secs(60), secs(0)));
        assert_eq!(d.len(), 2);
        // b's warning is already due (its token has less than 60 s left).
        let (due, next) = d.take_due(t0);
        assert_eq!(
            due.iter().map(|(k, _)| (k.1, k.2)).collect::<Vec<_>>(),
            [(2, Kind::Warn)]
        );
        assert_eq!(next, Some(t0 + secs(10)));
        // A refresh moves a's deadlines; the old ones are gone.
        d.schedule(&a, Expiry::new(t0 + secs(200), secs(60), secs(5)));
        let (due, _) = d.take_due(t0 + secs(100));
        assert_eq!(
            due.iter().map(|(k, _)| (k.1, k.2)).collect::<Vec<_>>(),
            [(2, Kind::Close)]
        );
        assert_eq!(d.len(), 1);
        d.cancel(1);
        assert!(d.is_empty());
        assert_eq!(d.take_due(t0 + secs(1000)).0.len(), 0);
    }
}
