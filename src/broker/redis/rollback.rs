//! A room's log that went back: after an asynchronous failover the new
//! master may lack the newest messages that the old one accepted, published
//! and that this replica delivered. Its counter would then hand out those
//! seqs again, and every member and every resuming client would take the
//! new messages for ones they already have. When the receiver finds the
//! log behind what it delivered, it moves the room's counter past it, so no
//! seq is ever used twice; the lost messages stay lost (see
//! docs/redis.md, "What a failover can lose").

use redis::Script;

use super::{script, Shared};
use crate::broker::BrokerError;

/// Moves the room's counter to at least ARGV[2], if the room is still in
/// epoch ARGV[1] (a room whose history was lost altogether has a new epoch
/// and starts again). KEYS: meta. Returns the counter after.
const SKIP: &str = r#"
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return -1
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if seq < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[2])
  return tonumber(ARGV[2])
end
return seq
"#;

/// The compiled script.
pub(super) struct Skip(Script);

impl Default for Skip {
    fn default() -> Skip {
        Skip(Script::new(SKIP))
    }
}

/// The log of `room` (epoch `epoch`) ends at `logged`, behind `delivered`:
/// moves its counter past `delivered` and says so.
pub(super) async fn repair(
    shared: &Shared,
    room: &str,
    epoch: &str,
    logged: u64,
    delivered: u64,
) -> Result<(), BrokerError> {
    let mut inv = shared.scripts.skip.0.prepare_invoke();
    inv.key(script::meta_key(room)).arg(epoch).arg(delivered);
    let mut conn = shared.conn.clone();
    let _now: i64 = shared.call(inv.invoke_async(&mut conn)).await?;
    shared
        .metrics
        .broker_lost_messages
        .inc_by(delivered - logged);
    tracing::warn!(
        %room,
        delivered,
        logged,
        "redis lost messages this replica delivered (a failover); their seqs are not reused"
    );
    Ok(())
}
