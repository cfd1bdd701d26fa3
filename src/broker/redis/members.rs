//! `who` on Redis: each replica's identified users per room, kept next to
//! its online count, and the read that merges them.
//!
//! A replica writes its users of a room into its own hash,
//! `wschat:{room}:members:<replica id>` (user → name), in the PRESENCE
//! script call that sets its online count (see [`super::script`]): a
//! coalesced presence event carries the changes since the last one, and the
//! periodic refresh replaces the whole hash and renews its TTL. The hash
//! expires `presence_ttl` after the replica stopped refreshing it, like its
//! online entry, and goes at once when the replica's last member leaves.
//!
//! Reading lists the live replicas from the room's `online` hash (entries
//! whose expiry, on Redis's clock, has not passed: a dead replica stops
//! being listed exactly when it stops being counted), then reads their
//! hashes, named in KEYS, in a second script. Every key carries the `{room}`
//! hash tag, so both scripts touch one Redis Cluster slot and need no KEYS
//! or SCAN. This replica's own users come from its local room, which is
//! newer than its hash (changes reach Redis with the next presence event).

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};

use super::{script, Shared};
use crate::broker::{BrokerError, Members, UserChanges};
use crate::fanout::users::{Listed, MAX_LISTED};

/// The hash of `replica`'s identified users in `room`.
pub(super) fn members_key(room: &str, replica: &str) -> String {
    format!("wschat:{{{room}}}:members:{replica}")
}

/// The other live replicas of a room and their counts. KEYS: online. ARGV:
/// this replica's id. Returns `{replica, count, ...}`; writes nothing (the
/// PRESENCE script removes expired entries).
const LIVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local count, expires = string.match(all[i + 1], '^(%d+):(%d+)$')
  if count and tonumber(expires) > now and all[i] ~= ARGV[1] then
    out[#out + 1] = all[i]
    out[#out + 1] = count
  end
end
return out
";

/// Distinct users from replicas' member hashes. KEYS: the hashes. ARGV: the
/// most users to return. Returns `{user, name, ...}`. HSCAN stops as soon as
/// enough users are found, so a room of thousands costs about the cap.
const USERS: &str = r"
local want = tonumber(ARGV[1])
local seen = {}
local out = {}
local n = 0
for k = 1, #KEYS do
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', KEYS[k], cursor, 'COUNT', 128)
    cursor = page[1]
    local fields = page[2]
    for i = 1, #fields, 2 do
      if not seen[fields[i]] then
        seen[fields[i]] = true
        n = n + 1
        out[#out + 1] = fields[i]
        out[#out + 1] = fields[i + 1]
        if n >= want then
          return out
        end
      end
    end
  until cursor == '0'
end
return out
";

static LIVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(LIVE));
static USERS_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(USERS));

/// Appends a user report to a PRESENCE call: mode, count, then pairs.
pub(super) fn user_args(inv: &mut ScriptInvocation<'_>, users: &UserChanges) {
    match users {
        UserChanges::Unchanged => {
            inv.arg("").arg(0);
        }
        UserChanges::Delta(changes) => {
            inv.arg("d").arg(changes.len());
            for (user, name) in changes {
                match name {
                    Some(name) => inv.arg(&**user).arg(format!("+{name}")),
                    None => inv.arg(&**user).arg("-"),
                };
            }
        }
        UserChanges::Full(all) => {
            inv.arg("f").arg(all.len());
            for l in all {
                inv.arg(&*l.user).arg(format!("+{}", l.name));
            }
        }
    }
}

/// Who is in `room`: this replica's members and users, merged with those
/// of every other live replica.
pub(super) async fn read(shared: &Shared, room: &str) -> Result<Members, BrokerError> {
    let (local_online, local) = shared
        .rooms
        .get(room)
        .map_or((0, Vec::new()), |r| r.local_users(MAX_LISTED + 1));
    let mut inv = LIVE_SCRIPT.prepare_invoke();
    inv.key(script::online_key(room)).arg(&shared.replica);
    let mut conn = shared.conn.clone();
    let live: Vec<String> = shared.call(inv.invoke_async(&mut conn)).await?;
    let mut online = local_online as u64;
    let mut others = Vec::new();
    for pair in live.chunks(2) {
        let [replica, count] = pair else {
            return Err(BrokerError::Reply("live replicas"));
        };
        let count: u64 = count
            .parse()
            .map_err(|_| BrokerError::Reply("live replicas"))?;
        online += count;
        others.push(replica);
    }
    if others.is_empty() {
        return Ok(Members::merge(online, local, Vec::new()));
    }
    let mut inv = USERS_SCRIPT.prepare_invoke();
    for replica in others {
        inv.key(members_key(room, replica));
    }
    // Enough that, after dropping users also listed here, one past the cap
    // is still found when it exists.
    inv.arg(MAX_LISTED + 1 + local.len());
    let found: Vec<String> = shared.call(inv.invoke_async(&mut conn)).await?;
    let remote = found
        .chunks_exact(2)
        .map(|pair| Listed {
            user: pair[0].as_str().into(),
            name: pair[1].as_str().into(),
            connections: 1,
        })
        .collect();
    Ok(Members::merge(online, local, remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_room_shares_its_hash_tag() {
        let key = members_key("ops-1", "r-1");
        assert_eq!(key, "wschat:{ops-1}:members:r-1");
        assert!(script::online_key("ops-1").contains("{ops-1}"));
    }
}
