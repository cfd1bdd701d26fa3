//! Broker suite case: many rooms reached at once, as after a restart or a
//! deploy, are all carried, and their messages cross replicas.

use tokio::task::JoinSet;

use super::common::{connect, ORIGIN};
use super::{Cluster, Env};

/// Distinct rooms joined at once on one replica, under the default
/// `limits.ip_max_connections` (200): a Redis replica subscribes each.
const ROOMS: usize = 150;

/// `ROOMS` clients join `ROOMS` rooms on replica 0 at the same moment; every
/// join gets its history (none is refused with 1013 while the replica
/// subscribes the rest), and a message said on replica 1 reaches replica 0
/// in rooms from the start, the middle and the end of the storm.
pub(super) async fn many_rooms_at_once_are_all_carried<F, Fut>(setup: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: std::future::Future<Output = Cluster>,
{
    let c = setup(vec![
        ("CHAT__LIMITS__IP_CONNECT_BURST", "1000".into()),
        ("CHAT__SERVER__IP_MAX_HTTP_CONNECTIONS", "1000".into()),
        ("CHAT__TELEMETRY__LOG_LEVEL", "error".into()),
    ])
    .await;
    let url = |i: usize, room: usize| {
        c.replica(i)
            .url(&format!("name=r{i}m{room}&room=many{room}"))
    };
    let mut joins = JoinSet::new();
    for room in 0..ROOMS {
        let url = url(0, room);
        joins.spawn(async move {
            let joined = connect(&url, Some(ORIGIN)).await;
            (room, joined)
        });
    }
    let mut members = Vec::new();
    let mut refused = Vec::new();
    while let Some(done) = joins.join_next().await {
        match done.expect("a join task panicked") {
            (room, Ok(client)) => members.push((room, client)),
            (room, Err(status)) => refused.push(format!("many{room}: {status}")),
        }
    }
    assert!(refused.is_empty(), "upgrades refused: {refused:?}");
    members.sort_by_key(|(room, _)| *room);
    for (_, client) in &mut members {
        client.next_of("history").await;
    }
    for room in [0, ROOMS / 2, ROOMS - 1] {
        let mut speaker = connect(&url(1, room), Some(ORIGIN))
            .await
            .unwrap_or_else(|s| panic!("replica 1 refused with {s}"));
        speaker.next_of("history").await;
        speaker.say("across").await;
        let heard = members[room].1.next_message().await;
        assert_eq!(heard["text"], "across", "room many{room}: {heard}");
    }
}
