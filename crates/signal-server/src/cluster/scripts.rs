//! The Lua scripts every shared write runs as: each one atomic in Redis,
//! and all on Redis's clock, so instances need no synchronized clocks.

use redis::Script;

/// `now` in ms on Redis's clock, so instances need no synchronized clocks.
const NOW: &str = "local t = redis.call('TIME') \
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) ";

/// Is `inst` alive at `now`? (`dl` is its deadline or false.)
const ALIVE: &str = "local function alive(inst) \
local dl = redis.call('ZSCORE', KEYS_INSTANCES, inst) \
return dl and tonumber(dl) > now end ";

/// Starts the countdown of `id`'s binding (key `binding`), or ends it at
/// once with `ms` 0, in the binding key and in the `bindings` count.
const LET_GO: &str = "local function let_go(binding, bindings, id, ms) \
if tonumber(ms) > 0 then redis.call('PEXPIRE', binding, ms) \
redis.call('ZADD', bindings, now + tonumber(ms), id) \
else redis.call('DEL', binding) redis.call('ZREM', bindings, id) end end ";

/// KEYS: peers, binding:<id>, instances, members:<me>, ids, bindings.
/// ARGV: id, me, conn, key hex or '', presence channel, peer_joined JSON,
/// '1' if a new binding may be made, the most bindings kept.
/// Answers 'ok_new' when it made a new binding.
const CLAIM: &str = r#"
if not alive(ARGV[2]) then return 'not_alive' end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and alive(string.match(cur, '^(%S+)')) then return 'taken' end
local b = redis.call('GET', KEYS[2])
local answer = 'ok'
if b then
  if ARGV[4] == '' then return 'needs_signature' end
  if b ~= ARGV[4] then return 'other_key' end
  redis.call('PERSIST', KEYS[2])
  redis.call('ZADD', KEYS[6], '+inf', ARGV[1])
elseif ARGV[4] ~= '' then
  if ARGV[7] ~= '1' then return 'rate_limited' end
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
  if redis.call('ZCARD', KEYS[6]) >= tonumber(ARGV[8]) then return 'full' end
  redis.call('SET', KEYS[2], ARGV[4])
  redis.call('ZADD', KEYS[6], '+inf', ARGV[1])
  answer = 'ok_new'
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
redis.call('ZADD', KEYS[5], 0, ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[2] .. '\n' .. ARGV[6])
return answer
"#;

/// Frees an id this instance's connection holds, and starts its binding's
/// countdown. KEYS: peers, binding:<id>, members:<me>, ids, bindings.
/// ARGV: id, me, conn, binding ms, presence channel, peer_left JSON.
const RELEASE: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local inst, conn, key = string.match(cur, '^(%S+) (%S+) (%S*)$')
if inst ~= ARGV[2] or conn ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
if key ~= '' then let_go(KEYS[2], KEYS[5], ARGV[1], ARGV[4]) end
redis.call('PUBLISH', ARGV[5], ARGV[2] .. '\n' .. ARGV[6])
return 1
"#;

/// Publishes a relay frame to the instance holding `to`; returns how many
/// subscribers got it (0: no live holder). KEYS: peers, instances.
/// ARGV: to, channel prefix (`<prefix>:to:`), frame.
const RELAY: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local inst = string.match(cur, '^(%S+)')
if not alive(inst) then return 0 end
return redis.call('PUBLISH', ARGV[2] .. inst, ARGV[1] .. '\n' .. ARGV[3])
"#;

/// Of `ids`, those held by a live instance, as [tail, id, key, id, key,
/// ...]: with `ARGV[1]` '1', ARGV[2..] are the ids (a filtered list, tail
/// ''); otherwise one page of the full list: at most ARGV[3] ids after
/// ARGV[2] ('' from the start), and tail is the last id looked at if the
/// page was full (more may follow), else ''.
/// KEYS: peers, instances, ids.
const LIST: &str = r#"
local ids, tail = {}, ''
if ARGV[1] == '1' then
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  local from = ARGV[2] == '' and '-' or ('(' .. ARGV[2])
  local limit = tonumber(ARGV[3])
  ids = redis.call('ZRANGEBYLEX', KEYS[3], from, '+', 'LIMIT', 0, limit)
  if #ids == limit then tail = ids[#ids] end
end
local out = {tail}
if #ids == 0 then return out end
local vals = redis.call('HMGET', KEYS[1], unpack(ids))
local seen = {}
for i = 1, #ids do
  if vals[i] then
    local inst, conn, key = string.match(vals[i], '^(%S+) (%S+) (%S*)$')
    if seen[inst] == nil then seen[inst] = alive(inst) end
    if seen[inst] then
      out[#out + 1] = ids[i]
      out[#out + 1] = key
    end
  end
end
return out
"#;

/// Renews this instance's deadline; returns 1 if it was still alive
/// (0: it had lapsed, and others may have freed its ids).
/// KEYS: instances. ARGV: me, ttl ms.
const HEARTBEAT: &str = r#"
local was = alive(ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if was then return 1 else return 0 end
"#;

/// Frees the ids of every instance whose deadline passed; returns them.
/// KEYS: instances, peers, ids, bindings. ARGV: prefix, binding ms,
/// presence channel.
const SWEEP: &str = r#"
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local gone = {}
for _, inst in ipairs(dead) do
  local members = ARGV[1] .. ':members:' .. inst
  for _, id in ipairs(redis.call('SMEMBERS', members)) do
    local cur = redis.call('HGET', KEYS[2], id)
    if cur then
      local i, conn, key = string.match(cur, '^(%S+) (%S+) (%S*)$')
      if i == inst then
        redis.call('HDEL', KEYS[2], id)
        redis.call('ZREM', KEYS[3], id)
        if key ~= '' then let_go(ARGV[1] .. ':binding:' .. id, KEYS[4], id, ARGV[2]) end
        redis.call('PUBLISH', ARGV[3], inst .. '\n{"type":"peer_left","peer_id":"' .. id .. '"}')
        gone[#gone + 1] = id
      end
    end
  end
  redis.call('DEL', members)
  redis.call('ZREM', KEYS[1], inst)
end
return gone
"#;

/// Removes this instance at a clean shutdown (its ids are released by
/// then). KEYS: instances, members:<me>. ARGV: me.
const LEAVE: &str = r#"
redis.call('DEL', KEYS[2])
return redis.call('ZREM', KEYS[1], ARGV[1])
"#;

pub(super) struct Scripts {
    pub(super) claim: Script,
    pub(super) release: Script,
    pub(super) relay: Script,
    pub(super) list: Script,
    pub(super) heartbeat: Script,
    pub(super) sweep: Script,
    pub(super) leave: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        // `instances`: which of KEYS is the instances set.
        let timed = |instances: u8, body: &str| {
            Script::new(&format!(
                "{NOW}local KEYS_INSTANCES = KEYS[{instances}] {ALIVE}{body}"
            ))
        };
        Scripts {
            claim: timed(3, CLAIM),
            release: Script::new(&format!("{NOW}{LET_GO}{RELEASE}")),
            relay: timed(2, RELAY),
            list: timed(2, LIST),
            heartbeat: timed(1, HEARTBEAT),
            sweep: Script::new(&format!("{NOW}{LET_GO}{SWEEP}")),
            leave: Script::new(LEAVE),
        }
    }
}
