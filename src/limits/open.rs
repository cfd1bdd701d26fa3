//! Caps on open connections: the per-key count that the WebSocket caps (per
//! client IP, per user) and the pre-upgrade HTTP cap share, and the HTTP
//! caps themselves.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{lock, IpKey};
use crate::metrics::HttpRefusal;

/// Open connections per key (a client [`IpKey`], a user id), each key
/// capped at `max`. A key's entry exists only while it has connections
/// open, so the map needs no pruning.
pub(crate) struct OpenPerKey<K> {
    max: u32,
    open: Mutex<HashMap<K, u32>>,
}

/// One counted connection; dropping it gives the place back.
pub(crate) struct OpenSlot<K: Hash + Eq> {
    key: K,
    counts: Arc<OpenPerKey<K>>,
}

impl<K: Hash + Eq + Clone> OpenPerKey<K> {
    pub(crate) fn new(max: u32) -> Arc<OpenPerKey<K>> {
        Arc::new(OpenPerKey {
            max,
            open: Mutex::default(),
        })
    }

    /// Counts one more connection for `key`, or `None` at its cap.
    pub(crate) fn try_open(self: &Arc<Self>, key: &K) -> Option<OpenSlot<K>> {
        let mut open = lock(&self.open);
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            if *count == 0 {
                open.remove(key);
            }
            return None;
        }
        *count += 1;
        Some(OpenSlot {
            key: key.clone(),
            counts: self.clone(),
        })
    }

    /// Keys with connections open (for tests: nothing is left behind).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        lock(&self.open).len()
    }
}

impl<K: Hash + Eq> Drop for OpenSlot<K> {
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

/// The caps on connections that have not upgraded: per client key and for
/// the whole listener. Checked at accept, before a byte is read.
pub struct HttpCaps {
    global: Arc<Semaphore>,
    per_key: Arc<OpenPerKey<IpKey>>,
    open: IntGauge,
}

/// What a connection holds until it upgrades or closes.
pub struct HttpSlot {
    _global: OwnedSemaphorePermit,
    _per_key: Option<OpenSlot<IpKey>>,
    open: IntGauge,
}

impl Drop for HttpSlot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl HttpCaps {
    /// At most `max` connections in all and `key_max` per client key;
    /// `open` counts the connections holding a slot.
    pub fn new(max: u32, key_max: u32, open: IntGauge) -> HttpCaps {
        HttpCaps {
            global: Arc::new(Semaphore::new(max as usize)),
            per_key: OpenPerKey::new(key_max),
            open,
        }
    }

    /// A slot for a new connection from `key`; `None` for a trusted proxy,
    /// which speaks for many clients and counts only against the global cap.
    pub fn try_open(&self, key: Option<IpKey>) -> Result<HttpSlot, HttpRefusal> {
        let per_key = match key {
            Some(key) => Some(self.per_key.try_open(&key).ok_or(HttpRefusal::IpCap)?),
            None => None,
        };
        let global = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| HttpRefusal::Capacity)?;
        self.open.inc();
        Ok(HttpSlot {
            _global: global,
            _per_key: per_key,
            open: self.open.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn key(last: u8) -> IpKey {
        IpKey::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), 64)
    }

    #[test]
    fn http_caps_per_key_and_global_release_on_drop() {
        let gauge = IntGauge::new("t", "t").expect("gauge");
        let caps = HttpCaps::new(3, 2, gauge.clone());
        let a1 = caps.try_open(Some(key(1))).expect("first");
        let _a2 = caps.try_open(Some(key(1))).expect("second");
        assert_eq!(caps.try_open(Some(key(1))).err(), Some(HttpRefusal::IpCap));
        let _proxy = caps.try_open(None).expect("a proxy has no per-key cap");
        assert_eq!(gauge.get(), 3);
        assert_eq!(
            caps.try_open(Some(key(2))).err(),
            Some(HttpRefusal::Capacity)
        );
        assert_eq!(caps.try_open(None).err(), Some(HttpRefusal::Capacity));
        drop(a1);
        assert_eq!(gauge.get(), 2);
        let _b = caps.try_open(Some(key(2))).expect("a place was given back");
        assert_eq!(caps.per_key.keys(), 2);
    }

    #[test]
    fn refused_at_the_global_cap_keeps_no_per_key_count() {
        let caps = HttpCaps::new(1, 5, IntGauge::new("t", "t").expect("gauge"));
        let _held = caps.try_open(Some(key(1))).expect("first");
        for _ in 0..3 {
            assert_eq!(
                caps.try_open(Some(key(2))).err(),
                Some(HttpRefusal::Capacity)
            );
        }
        assert_eq!(lock(&caps.per_key.open).get(&key(2)), None);
    }
}
