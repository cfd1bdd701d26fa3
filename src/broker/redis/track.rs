//! What the receiver keeps per watched room: the epoch and last seq
//! delivered, whether pub/sub may have missed something, and the messages
//! that came before the room's baseline.

use std::sync::Arc;
use std::time::Instant;

/// Messages held for a room whose baseline has not come yet. The wait is two
/// commands at most; a room busier than this is read from the log instead.
const EARLY_MAX: usize = 1024;

/// A message that arrived before its room's baseline.
pub(super) struct Early {
    pub(super) seq: u64,
    pub(super) epoch: Arc<str>,
    pub(super) at: Option<Instant>,
    pub(super) json: Arc<str>,
}

/// What this replica has delivered in one room.
#[derive(Default)]
pub(super) struct Track {
    pub(super) epoch: Option<Arc<str>>,
    /// The last seq delivered; `None` until a baseline is known.
    pub(super) last: Option<u64>,
    /// Pub/sub may have missed messages: read the log before trusting it.
    pub(super) stale: bool,
    /// Messages received before the baseline (`Seen`), at most [`EARLY_MAX`].
    pub(super) early: Vec<Early>,
}

impl Track {
    /// Whether a history read ending at `seq` of `epoch` may go on. Not
    /// before the baseline: what was delivered is not known yet.
    pub(super) fn caught_up(&self, epoch: &str, seq: u64) -> bool {
        self.last.is_some()
            && (self.epoch.as_deref() != Some(epoch) || self.last.is_some_and(|l| l >= seq))
    }

    /// Holds a message that came before the baseline. When too many came,
    /// drops them all and marks the room stale: the log is read from the
    /// baseline as soon as it is known.
    pub(super) fn hold(&mut self, m: Early) {
        if self.early.len() >= EARLY_MAX {
            self.early = Vec::new();
            self.stale = true;
        }
        self.early.push(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn early(seq: u64) -> Early {
        Early {
            seq,
            epoch: "e".into(),
            at: None,
            json: "{}".into(),
        }
    }

    #[test]
    fn messages_before_the_baseline_are_bounded_and_an_overflow_marks_the_room_stale() {
        let mut t = Track::default();
        for seq in 1..=EARLY_MAX as u64 {
            t.hold(early(seq));
        }
        assert_eq!((t.early.len(), t.stale), (EARLY_MAX, false));
        t.hold(early(EARLY_MAX as u64 + 1));
        assert_eq!(
            (t.early.len(), t.stale),
            (1, true),
            "dropped, read from the log"
        );
        for seq in 0..10 * EARLY_MAX as u64 {
            t.hold(early(seq));
        }
        assert!(t.early.len() <= EARLY_MAX);
    }

    #[test]
    fn no_history_read_goes_on_before_the_baseline() {
        let mut t = Track::default();
        assert!(!t.caught_up("e", 0), "no baseline: not caught up");
        t.epoch = Some("e".into());
        t.last = Some(5);
        assert!(t.caught_up("e", 5));
        assert!(!t.caught_up("e", 6));
        assert!(t.caught_up("other life", 9));
    }
}
