//! The Redis side of the broker: the Lua scripts, and the pub/sub envelope
//! they publish. Key names are in [`super::keys`] (re-exported here).
//!
//! Keys of one room share the hash tag `{room}`, so a cluster keeps them
//! on one slot:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `wschat:{room}:meta` | hash | `seq` (last assigned), `epoch` (this life of the history) |
//! | `wschat:{room}:log` | stream | one entry per message, id `<seq>-0`, field `m` = message JSON |
//! | `wschat:{room}:online` | hash | replica id → `<local count>:<expiry ms, Redis clock>`; `epoch` → the epoch a room without messages will get |
//! | `wschat:{room}:ev` | channel | envelopes of messages, presence events and deletes |
//! | `wschat:{room}:members:<replica id>` | hash | user → name: the identified users this replica has in the room (see [`super::members`]) |
//! | `wschat:{room}:once:<scope>` | hash | an idempotent API publish's `seq`, `epoch`, `id`, for `api.idempotency_window` |
//!
//! `seq` and `epoch` live in one hash, so losing the data loses both at once:
//! the next publish creates a new epoch and `seq` starts again at 1, in the
//! same atomic step.
//!
//! A room is only written by its first message. Joining a room without
//! messages creates no `meta` key (it would live for `history_ttl`): the
//! epoch handed to the joiner waits in the `online` hash, which lives while
//! some replica has members there (every presence refresh renews it) and
//! expires `presence_ttl` after the last one left. The first publish adopts
//! it, so a client that joined the empty room holds the epoch its messages
//! carry.

use redis::Script;

pub use super::keys::{channel, log_key, meta_key, once_key, online_key, room_of_channel};

/// Accepts one message. KEYS: meta, log, online. ARGV: epoch candidate,
/// history size, TTL ms, channel, the message JSON up to and including
/// `"seq":`, trace, accepted-at (µs since the Unix epoch), the oldest
/// `sentAt` kept (`''`: no age limit), the message id, the idempotency
/// window ms. KEYS[4], when given, is an idempotency key: while it lives the
/// publish is not repeated and its first answer comes back instead. Returns
/// `{seq, epoch, replayed (0|1), id}`.
///
/// The epoch candidate is new for every call, so the log entry keeps it as
/// field `p`, the publish id: a publish whose reply was lost can be found.
///
/// In one atomic step: create the epoch if the room has none (the one its
/// joiners were given, else the candidate; then drop any orphaned log), take
/// the next seq, append to the log trimmed to about the history size, drop
/// the oldest entries sent before the age limit (a namespace's
/// `history_max_age`; RFC 3339 times of one format sort as text), renew the
/// idle TTL, and publish the envelope. Because the publish happens
/// inside the script, pub/sub order is seq order. A waiting epoch is used
/// once: if this room's history expires later, its next life gets a new one.
const PUBLISH: &str = r#"
if KEYS[4] then
  local first = redis.call('HMGET', KEYS[4], 'seq', 'epoch', 'id')
  if first[1] then
    return {tonumber(first[1]), first[2], 1, first[3]}
  end
end
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  local waiting = redis.call('HGET', KEYS[3], 'epoch')
  if waiting then
    redis.call('HDEL', KEYS[3], 'epoch')
  end
  redis.call('HSET', KEYS[1], 'epoch', waiting or ARGV[1])
  redis.call('DEL', KEYS[2])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local json = ARGV[5] .. seq .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'm', json, 'p', ARGV[1])
if ARGV[8] ~= '' then
  for _ = 1, 1000 do
    local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    if #first == 0 then break end
    local at = string.match(first[1][2][2], '"sentAt":"([^"]+)"')
    if at and at >= ARGV[8] then break end
    redis.call('XDEL', KEYS[2], first[1][1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4],
  'm\n' .. seq .. '\n' .. epoch .. '\n' .. ARGV[7] .. '\n' .. ARGV[6] .. '\n' .. json)
if KEYS[4] then
  redis.call('HSET', KEYS[4], 'seq', seq, 'epoch', epoch, 'id', ARGV[9])
  redis.call('PEXPIRE', KEYS[4], ARGV[10])
end
return {seq, epoch, 0, ARGV[9]}
"#;

/// Reads history. KEYS: meta, log, online. ARGV: epoch candidate, presence
/// TTL ms, after-seq (`''`: none), after-epoch (`''`: trust the seq), count,
/// the oldest `sentAt` kept (`''`: no age limit; older entries are left out).
/// Returns `{epoch, seq, id1, json1, id2, json2, ...}` oldest first: at most
/// `count` newest messages with seq above after-seq when the epoch matches,
/// else the newest `count`.
///
/// A room without messages (no `meta`) has nothing to read: the joiner gets
/// the epoch waiting in `online`, created here if there is none, so that a
/// client that joins an empty room already holds the epoch later messages
/// carry. Nothing is written that outlives the presence TTL.
const HISTORY: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = redis.call('HGET', KEYS[3], 'epoch')
  if not epoch then
    epoch = ARGV[1]
    redis.call('HSET', KEYS[3], 'epoch', epoch)
    redis.call('PEXPIRE', KEYS[3], ARGV[2])
  end
  return {epoch, 0}
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local out = {epoch, seq}
local count = tonumber(ARGV[5])
local after = 0
if ARGV[3] ~= '' and (ARGV[4] == '' or ARGV[4] == epoch) then
  after = tonumber(ARGV[3])
end
if count == 0 or after >= seq then
  return out
end
local low = '-'
if after > 0 then low = '(' .. after .. '-0' end
local rows = redis.call('XREVRANGE', KEYS[2], '+', low, 'COUNT', count)
for i = #rows, 1, -1 do
  local json = rows[i][2][2]
  local at = string.match(json, '"sentAt":"([^"]+)"')
  if ARGV[6] == '' or (at and at >= ARGV[6]) then
    out[#out + 1] = rows[i][1]
    out[#out + 1] = json
  end
end
return out
"#;

/// Sets this replica's online count and identified users, and announces
/// events. KEYS: online, this replica's members hash. ARGV: replica id,
/// local count, presence TTL ms, channel, trace, users mode (`''`: no
/// change, `'d'`: changes, `'f'`: the full list replaces the hash), the
/// number of users n, n pairs of user and `+<name>` (here) or `-` (gone),
/// then the event texts. Returns the room-wide count.
///
/// Each replica's count carries its own expiry on Redis's clock; expired
/// entries (replicas that died without cleaning up) are removed and not
/// counted. The `epoch` field (see HISTORY) is not a replica: it is kept,
/// and lives as long as the hash. A replica's members hash expires with
/// the same TTL, renewed by the same calls, and goes when its count is 0.
/// With no texts this is the periodic refresh.
const PRESENCE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local here = tonumber(ARGV[2]) > 0
if here then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + ttl))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local last = 7 + 2 * tonumber(ARGV[7])
if ARGV[6] == 'f' or not here then
  redis.call('DEL', KEYS[2])
end
if here then
  for i = 8, last, 2 do
    if ARGV[i + 1] == '-' then
      redis.call('HDEL', KEYS[2], ARGV[i])
    else
      redis.call('HSET', KEYS[2], ARGV[i], string.sub(ARGV[i + 1], 2))
    end
  end
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local total = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local count, expires = string.match(all[i + 1], '^(%d+):(%d+)$')
  if count and tonumber(expires) > now then
    total = total + tonumber(count)
  elseif all[i] ~= 'epoch' then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ttl)
for i = last + 1, #ARGV do
  redis.call('PUBLISH', ARGV[4], 'p\n' .. total .. '\n' .. ARGV[5] .. '\n' .. ARGV[i])
end
return total
";

/// Counts a room's members on every replica. KEYS: online. ARGV: replica
/// id. Returns `{total, this replica's count}` over the entries that have
/// not expired (on Redis's clock), so the caller can put its own live
/// count in place of the one it last wrote.
const ONLINE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total, mine = 0, 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local count, expires = string.match(all[i + 1], '^(%d+):(%d+)$')
  if count and tonumber(expires) > now then
    total = total + tonumber(count)
    if all[i] == ARGV[1] then mine = tonumber(count) end
  end
end
return {total, mine}
";

/// Deletes one message. KEYS: log. ARGV: message id, the asking user
/// (`''`: a guest), `1` when it is a moderator, channel.
/// Returns `{'deleted', seq}`, `{'forbidden'}` or `{'not_found'}`.
///
/// The message JSON starts with `{"id":"<id>"` (the pinned wire format), so
/// the entry is found by prefix without decoding every message; only the
/// one found is decoded, for its author. History is short (`rooms.history`
/// entries), and the delete and its `d` envelope are one atomic step, so
/// every replica tells its members in the room's order.
const DELETE: &str = r#"
local prefix = '{"id":"' .. ARGV[1] .. '"'
local rows = redis.call('XRANGE', KEYS[1], '-', '+')
for i = 1, #rows do
  local json = rows[i][2][2]
  if string.sub(json, 1, #prefix) == prefix then
    if ARGV[3] ~= '1' then
      local ok, msg = pcall(cjson.decode, json)
      if not ok or ARGV[2] == '' or type(msg) ~= 'table' or msg['user'] ~= ARGV[2] then
        return {'forbidden'}
      end
    end
    redis.call('XDEL', KEYS[1], rows[i][1])
    local seq = string.match(rows[i][1], '^(%d+)-')
    redis.call('PUBLISH', ARGV[4], 'd\n' .. seq .. '\n' .. ARGV[1])
    return {'deleted', seq}
  end
end
return {'not_found'}
"#;

/// The compiled scripts (their SHA1s; redis-rs loads them on NOSCRIPT, for
/// example after Redis restarted).
pub struct Scripts {
    pub publish: Script,
    pub history: Script,
    pub presence: Script,
    pub delete: Script,
    pub online: Script,
    /// See [`super::rollback`].
    pub(super) skip: super::rollback::Skip,
}

impl Scripts {
    /// Hashes the scripts. `sharded`: they publish with SPUBLISH (a Redis
    /// Cluster: the room's channel lives in its slot, beside its keys, and
    /// only that shard's subscribers hear it) instead of PUBLISH.
    pub fn new(sharded: bool) -> Scripts {
        let script = |text: &str| {
            if sharded {
                Script::new(&text.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'"))
            } else {
                Script::new(text)
            }
        };
        Scripts {
            publish: script(PUBLISH),
            history: script(HISTORY),
            presence: script(PRESENCE),
            delete: script(DELETE),
            online: script(ONLINE),
            skip: Default::default(),
        }
    }
}

impl Default for Scripts {
    /// The scripts for one server or a Sentinel-managed master (PUBLISH).
    fn default() -> Scripts {
        Scripts::new(false)
    }
}

/// One pub/sub envelope, as published by the scripts.
#[derive(Debug, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// `m\n<seq>\n<epoch>\n<accepted-at µs>\n<trace>\n<message JSON>`
    Message {
        seq: u64,
        epoch: &'a str,
        accepted_at_us: u64,
        trace: &'a str,
        json: &'a str,
    },
    /// `p\n<online>\n<trace>\n<text>`
    Presence {
        online: u64,
        trace: &'a str,
        text: &'a str,
    },
    /// `d\n<seq>\n<message id>`: the message left the history.
    Deleted { seq: u64, id: &'a str },
}

impl<'a> Envelope<'a> {
    /// Parses an envelope; `None` for anything malformed (never panics).
    pub fn parse(raw: &'a [u8]) -> Option<Envelope<'a>> {
        let s = std::str::from_utf8(raw).ok()?;
        let (kind, rest) = s.split_once('\n')?;
        match kind {
            "m" => {
                let mut it = rest.splitn(5, '\n');
                Some(Envelope::Message {
                    seq: it.next()?.parse().ok()?,
                    epoch: it.next()?,
                    accepted_at_us: it.next()?.parse().ok()?,
                    trace: it.next()?,
                    json: it.next()?,
                })
            }
            "p" => {
                let mut it = rest.splitn(3, '\n');
                Some(Envelope::Presence {
                    online: it.next()?.parse().ok()?,
                    trace: it.next()?,
                    text: it.next()?,
                })
            }
            "d" => {
                let (seq, id) = rest.split_once('\n')?;
                Some(Envelope::Deleted {
                    seq: seq.parse().ok()?,
                    id,
                })
            }
            _ => None,
        }
    }
}

/// The seq of a log entry id `<seq>-0`.
pub fn seq_of_id(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_scripts_publish_only_with_spublish() {
        for (text, plain) in [(PUBLISH, true), (PRESENCE, true), (DELETE, true)] {
            assert_eq!(text.contains("redis.call('PUBLISH'"), plain);
            let sharded = text.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'");
            assert!(!sharded.contains("'PUBLISH'"), "{sharded}");
        }
        let (plain, sharded) = (Scripts::new(false), Scripts::new(true));
        assert_ne!(plain.publish.get_hash(), sharded.publish.get_hash());
        assert_eq!(plain.online.get_hash(), sharded.online.get_hash());
    }

    #[test]
    fn envelopes_parse_and_garbage_is_refused() {
        let raw = b"m\n7\nep-1\n1700000000000000\n\n{\"seq\":7,\"text\":\"a\\nb\"}";
        assert_eq!(
            Envelope::parse(raw),
            Some(Envelope::Message {
                seq: 7,
                epoch: "ep-1",
                accepted_at_us: 1_700_000_000_000_000,
                trace: "",
                json: "{\"seq\":7,\"text\":\"a\\nb\"}",
            })
        );
        assert_eq!(
            Envelope::parse(b"p\n3\n00-ab-cd-01\nana joined"),
            Some(Envelope::Presence {
                online: 3,
                trace: "00-ab-cd-01",
                text: "ana joined"
            })
        );
        assert_eq!(
            Envelope::parse(b"d\n7\nid-1"),
            Some(Envelope::Deleted { seq: 7, id: "id-1" })
        );
        for bad in [
            &b"m\nx\ne\n1\n\n{}"[..],
            b"p\n",
            b"q\n1",
            b"",
            b"\xff",
            b"d\nx\ni",
        ] {
            assert_eq!(Envelope::parse(bad), None);
        }
        assert_eq!(room_of_channel(channel("lobby").as_bytes()), Some("lobby"));
        assert_eq!(room_of_channel(b"other"), None);
        assert_eq!(seq_of_id("42-0"), Some(42));
    }
}
