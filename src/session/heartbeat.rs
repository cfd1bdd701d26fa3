//! When connections ping: one ticker for the whole server walks the
//! connection directory a shard per tick, so every connection is told once
//! per `session.heartbeat_interval` that a heartbeat is due.
//!
//! A timer per connection cost every idle connection a timer entry in its
//! task (112 bytes, which put the task one allocation size class up), and
//! woke a worker at every connection's own millisecond. Here a shard's
//! connections are told together, so their pings leave in one pass and
//! their pongs come back together; the connection's own task sends the ping
//! and decides, as before, whether it heard anything since the last one.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::app::App;

/// Tells every connection once per interval that a heartbeat is due, until
/// the server stops. A connection's first comes within one interval of its
/// connect, at a point spread by its id (its shard).
pub async fn run(app: Arc<App>) {
    let shards = app.connections.shards();
    let tick = tick_for(app.settings.session.heartbeat_interval, shards);
    let mut ticker = tokio::time::interval_at(Instant::now() + tick, tick);
    // A late tick is not made up with a burst: the shard after it simply
    // waits a little longer.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut shard = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = app.stopped.cancelled() => return,
        }
        app.connections
            .for_each_in_shard(shard, |member| member.outbox.heartbeat());
        shard = (shard + 1) % shards;
    }
}

/// The time between two shards: the interval spread over all of them.
fn tick_for(interval: Duration, shards: usize) -> Duration {
    let shards = u32::try_from(shards.max(1)).unwrap_or(u32::MAX);
    (interval / shards).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_spread_over_the_shards() {
        assert_eq!(
            tick_for(Duration::from_secs(32), 128),
            Duration::from_millis(250)
        );
        // A tiny interval (tests use 200 ms) still ticks.
        assert_eq!(
            tick_for(Duration::from_micros(10), 128),
            Duration::from_millis(1)
        );
        assert_eq!(tick_for(Duration::from_secs(1), 0), Duration::from_secs(1));
    }
}
