-- Every room script runs with the same KEYS and leading ARGV, so that the
-- shared prelude can expire, prune and publish for any of them:
--
--   KEYS: 1 meta (hash), 2 participants (hash pid -> record),
--         3 leases (zset pid -> lease end ms), 4 waiting (hash wid -> record),
--         5 waiting expiry (zset wid -> end ms), 6 bans (hash subject -> record)
--   ARGV: 1 room, 2 event channel, 3 lease ms, 4 empty-room ms, 5 ban ms,
--         6 wait ms, 7 outcome ms, 8 outcome key prefix; the script's own from 9
--
-- NOW comes from clock.lua. Events are published inside the script: an
-- event goes out if and only if its change happened.
local K_META, K_PARTS, K_LEASE, K_WAIT, K_WAITQ, K_BANS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ROOM, CHANNEL = ARGV[1], ARGV[2]
local LEASE_MS, EMPTY_MS, BAN_MS = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local WAIT_MS, OUTCOME_MS, OUTCOME_PREFIX = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]

local function publish(ev)
  ev.room = ROOM
  ev.at_ms = NOW
  redis.call('PUBLISH', CHANNEL, cjson.encode(ev))
end

local function exists()
  return redis.call('EXISTS', K_META) == 1
end

-- A participant record: s subject, r role, n name, j joined (ms), g the
-- role it was admitted with (the policy's grant; records written before g
-- existed were never changed, so their r is their grant).
local function add_participant(pid, s, r, n)
  local rec = cjson.encode({s = s, r = r, n = n, j = NOW, g = r})
  redis.call('HSET', K_PARTS, pid, rec)
  redis.call('ZADD', K_LEASE, NOW + LEASE_MS, pid)
  if r == 'host' then redis.call('HINCRBY', K_META, 'hosts', 1) end
  return rec
end

local function drop_participant(pid)
  local raw = redis.call('HGET', K_PARTS, pid)
  if not raw then return nil end
  redis.call('HDEL', K_PARTS, pid)
  redis.call('ZREM', K_LEASE, pid)
  local p = cjson.decode(raw)
  if p.r == 'host' then redis.call('HINCRBY', K_META, 'hosts', -1) end
  return p
end

local function drop_wait(wid)
  local raw = redis.call('HGET', K_WAIT, wid)
  if not raw then return nil end
  redis.call('HDEL', K_WAIT, wid)
  redis.call('ZREM', K_WAITQ, wid)
  return cjson.decode(raw)
end

-- decide records a knock's outcome where the waiter (on any node) reads it.
local function decide(wid, w, outcome)
  outcome.s = w.s
  redis.call('SET', OUTCOME_PREFIX .. wid, cjson.encode(outcome), 'PX', OUTCOME_MS)
end

-- prune drops lapsed admissions and expired knocks.
local function prune()
  local lapsed = redis.call('ZRANGEBYSCORE', K_LEASE, '-inf', NOW)
  for _, pid in ipairs(lapsed) do drop_participant(pid) end
  if #lapsed > 0 then
    table.sort(lapsed)
    publish({kind = 'expired', revoked = lapsed})
  end
  local stale = redis.call('ZRANGEBYSCORE', K_WAITQ, '-inf', NOW)
  for _, wid in ipairs(stale) do drop_wait(wid) end
end

-- refresh_ttl makes the room end EMPTY_MS after its last admission ends
-- (a lapsing lease counts), and its bans BAN_MS after that.
local function refresh_ttl()
  if redis.call('HGET', K_META, 'perm') == '1' then
    for i = 1, 6 do redis.call('PERSIST', KEYS[i]) end
    return
  end
  local ttl = EMPTY_MS
  if redis.call('HLEN', K_PARTS) > 0 then ttl = EMPTY_MS + LEASE_MS end
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
  redis.call('PEXPIRE', K_BANS, ttl + BAN_MS)
end

-- ban bans subject and ends all its admissions and knocks.
local function ban(subject, name)
  redis.call('HSET', K_BANS, subject, cjson.encode({n = name, a = NOW}))
  local revoked = {}
  local all = redis.call('HGETALL', K_PARTS)
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).s == subject then revoked[#revoked + 1] = all[i] end
  end
  for _, pid in ipairs(revoked) do drop_participant(pid) end
  local waits = redis.call('HGETALL', K_WAIT)
  for i = 1, #waits, 2 do
    local w = cjson.decode(waits[i + 1])
    if w.s == subject then
      drop_wait(waits[i])
      decide(waits[i], w, {st = 'denied'})
    end
  end
  table.sort(revoked)
  return revoked
end

local function is_full()
  return redis.call('HLEN', K_PARTS) >= tonumber(redis.call('HGET', K_META, 'cap'))
end
