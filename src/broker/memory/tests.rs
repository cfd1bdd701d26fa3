//! The history budget, on the store alone: what goes first, what never
//! goes, and that a publish past the budget costs O(log rooms), not O(rooms).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::store::{Evicted, Store, MESSAGE_OVERHEAD, ROOM_OVERHEAD};
use crate::broker::Since;
use crate::config::RoomSettings;
use crate::metrics::Metrics;

const TEXT: &str = "0123456789012345678901234567890123456789"; // 40 bytes

fn json(n: u64) -> Arc<str> {
    format!("{{\"n\":{n:>6},\"t\":\"{TEXT}\"}}").into()
}

/// Room settings keeping `n` messages per room (no namespaces).
fn history(n: usize) -> RoomSettings {
    RoomSettings {
        history: n,
        history_bytes: 1 << 30,
        presence_interval: Duration::from_millis(100),
        presence_max_interval: Duration::from_secs(1),
        fanout_pause: 0.0,
        fanout_pause_max: Duration::ZERO,
        namespaces: Vec::new(),
    }
}

fn message_cost() -> usize {
    json(0).len() + MESSAGE_OVERHEAD
}

/// Publishes `n` messages into `room` as its member would; returns what the
/// budget evicted along the way.
fn publish(store: &mut Store, room: &str, n: u64) -> Evicted {
    let mut total = Evicted::default();
    for _ in 0..n {
        let head = store.head(room);
        let seq = {
            let mut h = head.lock().unwrap();
            h.seq += 1;
            h.seq
        };
        let e = store.push(room, &head, seq, json(seq), Instant::now());
        total.rooms += e.rooms;
        total.messages += e.messages;
    }
    total
}

/// A member joins, writes `n` messages, leaves.
fn visit(store: &mut Store, room: &str, n: u64) -> Evicted {
    store.pin(room);
    let e = publish(store, room, n);
    store.unpin(room);
    e
}

fn read(store: &mut Store, room: &str) -> (Arc<str>, Vec<Arc<str>>) {
    let h = store.read(room, &Since::default());
    (h.epoch, h.messages)
}

#[test]
fn rooms_without_members_go_first_least_recently_active_first() {
    let metrics = Arc::new(Metrics::new());
    let room = ROOM_OVERHEAD + 10 * message_cost();
    let mut store = Store::new(history(50), 3 * room, metrics.clone());
    let (epoch_a, _) = read(&mut store, "a");
    visit(&mut store, "a", 10);
    visit(&mut store, "b", 10);
    visit(&mut store, "c", 10);
    assert_eq!(store.bytes(), 3 * room);
    assert_eq!(metrics.history_evictions.get(), 0);
    // A fourth room pushes the oldest idle one, a, out: whole, and counted.
    let e = visit(&mut store, "d", 10);
    assert_eq!(
        e,
        Evicted {
            rooms: 1,
            messages: 0
        }
    );
    assert!(store.bytes() <= 3 * room);
    assert_eq!(metrics.history_evictions.get(), 1);
    assert_eq!(metrics.history_messages.get(), 30);
    assert_eq!(metrics.history_bytes.get() as usize, store.bytes());
    // a comes back empty with a new epoch; b and c kept theirs.
    store.pin("a");
    let (epoch, messages) = read(&mut store, "a");
    assert!(messages.is_empty() && epoch != epoch_a);
    store.unpin("a");
    assert_eq!(read(&mut store, "c").1.len(), 10);
}

#[test]
fn rooms_with_members_are_never_dropped_only_their_oldest_messages_trimmed() {
    let metrics = Arc::new(Metrics::new());
    let budget = 2 * ROOM_OVERHEAD + 30 * message_cost();
    let mut store = Store::new(history(50), budget, metrics.clone());
    store.pin("big");
    store.pin("small");
    publish(&mut store, "small", 5);
    publish(&mut store, "big", 25);
    // Over the budget with no idle room: the largest room loses its oldest.
    let e = publish(&mut store, "small", 10);
    assert_eq!(
        e,
        Evicted {
            rooms: 0,
            messages: 10
        }
    );
    assert!(store.bytes() <= budget);
    let big = read(&mut store, "big").1;
    assert_eq!(big.len(), 15);
    assert!(
        big[0].contains("    11"),
        "the oldest went first: {}",
        big[0]
    );
    assert_eq!(read(&mut store, "small").1.len(), 15);
    assert_eq!(metrics.history_trimmed.get(), 10);
    assert_eq!(metrics.history_evictions.get(), 0);
    assert_eq!(store.rooms(), 2);
}

#[test]
fn a_room_joined_but_never_written_leaves_nothing_behind() {
    let metrics = Arc::new(Metrics::new());
    let mut store = Store::new(history(50), 1 << 20, metrics.clone());
    for i in 0..100 {
        let room = format!("empty-{i}");
        store.pin(&room);
        read(&mut store, &room);
        store.unpin(&room);
    }
    assert_eq!(store.rooms(), 0);
    assert_eq!(store.bytes(), 0);
    assert_eq!(metrics.history_bytes.get(), 0);
    // Written rooms stay (until the TTL or the budget).
    visit(&mut store, "kept", 1);
    assert_eq!(store.rooms(), 1);
    // A second member keeps the room pinned: a leave that raced a join
    // never unpins it (the broker checks the rooms first), and a room still
    // pinned is not pruned.
    store.pin("kept");
    store.prune(
        Instant::now() + Duration::from_secs(3600),
        Duration::from_secs(60),
        |_| true,
    );
    assert_eq!(store.rooms(), 1);
    // Pinned without members (a missed leave): prune unpins it, then it is
    // an idle room that the TTL drops.
    store.prune(Instant::now(), Duration::from_secs(60), |_| false);
    store.prune(
        Instant::now() + Duration::from_secs(3600),
        Duration::from_secs(60),
        |_| false,
    );
    assert_eq!(store.rooms(), 0);
    assert_eq!(metrics.history_messages.get(), 0);
}

#[test]
fn the_history_size_still_caps_each_room() {
    let metrics = Arc::new(Metrics::new());
    let mut store = Store::new(history(3), 1 << 20, metrics.clone());
    visit(&mut store, "r", 10);
    let messages = read(&mut store, "r").1;
    assert_eq!(messages.len(), 3);
    assert_eq!(metrics.history_messages.get(), 3);
    assert_eq!(store.bytes(), ROOM_OVERHEAD + 3 * message_cost());
}

/// Publishing past the budget evicts from an index: the cost of a publish
/// that evicts one idle room must not grow with the number of rooms kept.
/// Prints the numbers; the bound is loose (a 20× margin) so a slow machine
/// does not fail it, while O(rooms) work (10,000 vs 100,000 rooms) would.
#[test]
fn eviction_cost_does_not_grow_with_the_number_of_rooms() {
    let per_publish = |rooms: usize| {
        let metrics = Arc::new(Metrics::new());
        let room = ROOM_OVERHEAD + message_cost();
        let mut store = Store::new(history(50), rooms * room, metrics);
        for i in 0..rooms {
            visit(&mut store, &format!("r{i}"), 1);
        }
        let started = Instant::now();
        let n = 20_000;
        for i in 0..n {
            let e = visit(&mut store, &format!("new{i}"), 1);
            assert_eq!(e.rooms, 1);
        }
        started.elapsed() / n
    };
    let small = per_publish(10_000);
    let large = per_publish(100_000);
    println!("a join + publish + leave that evicts one room: {small:?} with 10,000 rooms, {large:?} with 100,000");
    assert!(large < small * 20, "{large:?} vs {small:?}");
}
