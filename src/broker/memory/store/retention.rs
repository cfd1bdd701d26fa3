//! Messages leaving a room's history before the budget or the history size
//! would drop them: a client's `delete`, and a namespace's `history_max_age`.

use std::sync::Arc;

use super::{cost, State, Store};
use crate::config::sent_at;

impl Store {
    /// Removes message `id` from `room`'s history if `may(its JSON)` allows:
    /// `Some(Ok(seq))` removed, `Some(Err(()))` refused, `None` not there.
    pub fn remove(
        &mut self,
        room: &str,
        id: &str,
        may: impl FnOnce(&str) -> bool,
    ) -> Option<Result<u64, ()>> {
        let slot = self.slots.get_mut(room)?;
        // The message JSON starts with its id (see protocol::event).
        let prefix = format!("{{\"id\":\"{id}\"");
        let at = slot
            .messages
            .iter()
            .position(|(_, j)| j.starts_with(&prefix))?;
        if !may(&slot.messages[at].1) {
            return Some(Err(()));
        }
        let (seq, json) = slot.messages.remove(at)?;
        let before = slot.bytes;
        slot.bytes -= cost(&json);
        let (after, state) = (slot.bytes, slot.state);
        self.bytes -= before - after;
        self.messages = self.messages.saturating_sub(1);
        if state == State::Members {
            let name: Arc<str> = room.into();
            self.by_size.remove(&(before, name.clone()));
            self.by_size.insert((after, name));
        }
        self.report();
        Some(Ok(seq))
    }

    /// Drops `room`'s messages sent before `cutoff` (its namespace's
    /// `history_max_age`): they are in order, so only the front is looked at.
    pub(super) fn expire(&mut self, room: &str, cutoff: &str) {
        let Some(slot) = self.slots.get_mut(room) else {
            return;
        };
        let before = slot.bytes;
        let mut gone = 0;
        while slot
            .messages
            .front()
            .is_some_and(|(_, json)| sent_at(json).is_none_or(|at| at < cutoff))
        {
            if let Some((_, old)) = slot.messages.pop_front() {
                slot.bytes -= cost(&old);
                gone += 1;
            }
        }
        if gone == 0 {
            return;
        }
        let (after, state) = (slot.bytes, slot.state);
        self.bytes -= before - after;
        self.messages = self.messages.saturating_sub(gone);
        if state == State::Members {
            let name: Arc<str> = room.into();
            self.by_size.remove(&(before, name.clone()));
            self.by_size.insert((after, name));
        }
        self.report();
    }
}
