//! Caps on open connections: the per-client count of open connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{lock, IpKey};

/// Open connections per client key, each key capped at `max`. A key's
/// entry exists only while it has connections open, so the map needs no
/// pruning.
pub(crate) struct OpenPerKey {
    max: u32,
    open: Mutex<HashMap<IpKey, u32>>,
}

/// One counted connection; dropping it gives the place back.
pub(crate) struct OpenSlot {
    key: IpKey,
    counts: Arc<OpenPerKey>,
}

impl OpenPerKey {
    pub(crate) fn new(max: u32) -> Arc<OpenPerKey> {
        Arc::new(OpenPerKey {
            max,
            open: Mutex::default(),
        })
    }

    /// Counts one more connection for `key`, or `None` at its cap.
    pub(crate) fn try_open(self: &Arc<Self>, key: IpKey) -> Option<OpenSlot> {
        let mut open = lock(&self.open);
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            if *count == 0 {
                open.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(OpenSlot {
            key,
            counts: self.clone(),
        })
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.counts.open);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}
