package redisstore

import "github.com/redis/go-redis/v9"

// Every room script runs with the same KEYS and leading ARGV, so that the
// shared prelude can expire, prune and publish for any of them:
//
//	KEYS: 1 meta (hash), 2 participants (hash pid -> record),
//	      3 leases (zset pid -> lease end ms), 4 waiting (hash wid -> record),
//	      5 waiting expiry (zset wid -> end ms), 6 bans (hash subject -> record)
//	ARGV: 1 room, 2 event channel, 3 lease ms, 4 empty-room ms, 5 ban ms,
//	      6 wait ms, 7 outcome ms, 8 outcome key prefix; the script's own from 9
//
// Time is Redis's (TIME), so nodes with skewed clocks agree on every lease
// and expiry. Events are published inside the script: an event goes out if
// and only if its change happened.
const roomPrelude = `
local K_META, K_PARTS, K_LEASE, K_WAIT, K_WAITQ, K_BANS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ROOM, CHANNEL = ARGV[1], ARGV[2]
local LEASE_MS, EMPTY_MS, BAN_MS = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local WAIT_MS, OUTCOME_MS, OUTCOME_PREFIX = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function publish(ev)
  ev.room = ROOM
  ev.at_ms = NOW
  redis.call('PUBLISH', CHANNEL, cjson.encode(ev))
end

local function exists()
  return redis.call('EXISTS', K_META) == 1
end

local function add_participant(pid, s, r, n)
  local rec = cjson.encode({s = s, r = r, n = n, j = NOW})
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
`

func roomScript(body string) *redis.Script { return redis.NewScript(roomPrelude + body) }

// ARGV 9 owner, 10 default capacity, 11 change (JSON object of meta fields).
var putScript = roomScript(`
local created = 0
if not exists() then
  created = 1
  redis.call('DEL', K_PARTS, K_LEASE, K_WAIT, K_WAITQ)
  redis.call('HSET', K_META, 'owner', ARGV[9], 'cap', ARGV[10], 'locked', '0', 'lobby', '0', 'pass', '',
    'e2ee', '0', 'tags', '[]', 'perm', '0', 'created', NOW, 'hosts', 0)
else
  prune()
end
local ch = cjson.decode(ARGV[11])
local lock_before = redis.call('HGET', K_META, 'locked')
local other = false
for _, f in ipairs({'cap', 'lobby', 'pass', 'e2ee', 'tags', 'perm'}) do
  if ch[f] ~= nil then
    redis.call('HSET', K_META, f, ch[f])
    other = true
  end
end
if ch.locked ~= nil then redis.call('HSET', K_META, 'locked', ch.locked) end
refresh_ttl()
if created == 0 then
  local lock_after = redis.call('HGET', K_META, 'locked')
  if lock_after ~= lock_before then
    if lock_after == '1' then publish({kind = 'locked'}) else publish({kind = 'unlocked'}) end
  end
  if other then publish({kind = 'updated'}) end
end
return {'ok', created}
`)

// Returns {meta, participants, waiting, bans} as flat field/value lists.
var roomViewScript = roomScript(`
if not exists() then return {'notfound'} end
prune()
return {'ok', redis.call('HGETALL', K_META), redis.call('HGETALL', K_PARTS),
  redis.call('HGETALL', K_WAIT), redis.call('HGETALL', K_BANS)}
`)

// ARGV 9 subject (” for none).
var factsScript = roomScript(`
local banned = 0
if ARGV[9] ~= '' and redis.call('HEXISTS', K_BANS, ARGV[9]) == 1 then banned = 1 end
if not exists() then return {'missing', banned} end
prune()
return {'ok', banned, redis.call('HLEN', K_PARTS), redis.call('HGETALL', K_META)}
`)

// ARGV 9 pid, 10 subject, 11 role, 12 name.
var admitScript = roomScript(`
if not exists() then return {'notfound'} end
if redis.call('HEXISTS', K_BANS, ARGV[10]) == 1 then return {'banned'} end
prune()
if ARGV[11] ~= 'host' and redis.call('HGET', K_META, 'locked') == '1' then return {'locked'} end
if is_full() then return {'full'} end
add_participant(ARGV[9], ARGV[10], ARGV[11], ARGV[12])
refresh_ttl()
return {'ok', NOW}
`)

// ARGV 9 pid. Renews the lease; refreshes the room's expiry only when it
// has run down by half a lease, so a touch is usually three commands.
var touchScript = roomScript(`
if not exists() then return {'notadmitted'} end
local raw = redis.call('HGET', K_PARTS, ARGV[9])
if not raw then return {'notadmitted'} end
local lease = tonumber(redis.call('ZSCORE', K_LEASE, ARGV[9]))
if lease == nil or lease <= NOW then
  prune()
  refresh_ttl()
  return {'notadmitted'}
end
redis.call('ZADD', K_LEASE, 'XX', NOW + LEASE_MS, ARGV[9])
local pttl = redis.call('PTTL', K_META)
if pttl >= 0 and pttl < EMPTY_MS + LEASE_MS / 2 then refresh_ttl() end
return {'ok', raw}
`)

// ARGV 9 pid.
var leaveScript = roomScript(`
if not exists() then return {'notadmitted'} end
local p = drop_participant(ARGV[9])
if not p then return {'notadmitted'} end
publish({kind = 'left', subject = p.s, revoked = {ARGV[9]}})
refresh_ttl()
return {'ok'}
`)

// ARGV 9 pid, 10 ban ('1' or '0'). Returns {'ok', subject, revoked}.
var removeScript = roomScript(`
if not exists() then return {'notfound'} end
local raw = redis.call('HGET', K_PARTS, ARGV[9])
if not raw then return {'notadmitted'} end
local p = cjson.decode(raw)
local revoked
if ARGV[10] == '1' then
  revoked = ban(p.s, p.n)
  publish({kind = 'banned', subject = p.s, revoked = revoked})
else
  drop_participant(ARGV[9])
  revoked = {ARGV[9]}
  publish({kind = 'removed', subject = p.s, revoked = revoked})
end
refresh_ttl()
return {'ok', p.s, revoked}
`)

// ARGV 9 wid, 10 subject, 11 role, 12 name, 13 cap per room, 14 cap per identity.
var knockScript = roomScript(`
if not exists() then return {'notfound'} end
if redis.call('HEXISTS', K_BANS, ARGV[10]) == 1 then return {'banned'} end
prune()
if redis.call('HGET', K_META, 'locked') == '1' then return {'locked'} end
if redis.call('HLEN', K_WAIT) >= tonumber(ARGV[13]) then return {'lobbyfull'} end
local mine = 0
for _, raw in ipairs(redis.call('HVALS', K_WAIT)) do
  if cjson.decode(raw).s == ARGV[10] then mine = mine + 1 end
end
if mine >= tonumber(ARGV[14]) then return {'lobbyfull'} end
redis.call('HSET', K_WAIT, ARGV[9], cjson.encode({s = ARGV[10], r = ARGV[11], n = ARGV[12], t = NOW}))
redis.call('ZADD', K_WAITQ, NOW + WAIT_MS, ARGV[9])
refresh_ttl()
publish({kind = 'knocked', wait_id = ARGV[9], subject = ARGV[10]})
return {'ok', NOW}
`)

// ARGV 9 wid, 10 new pid. Returns {'ok', participant record}.
var admitWaitingScript = roomScript(`
if not exists() then return {'notfound'} end
prune()
local raw = redis.call('HGET', K_WAIT, ARGV[9])
if not raw then return {'notfound'} end
local w = cjson.decode(raw)
if redis.call('HEXISTS', K_BANS, w.s) == 1 then
  drop_wait(ARGV[9])
  decide(ARGV[9], w, {st = 'denied'})
  return {'banned'}
end
if is_full() then return {'full'} end
drop_wait(ARGV[9])
local rec = add_participant(ARGV[10], w.s, w.r, w.n)
decide(ARGV[9], w, {st = 'admitted', id = ARGV[10], r = w.r, n = w.n, j = NOW})
refresh_ttl()
publish({kind = 'lobby_admitted', wait_id = ARGV[9], subject = w.s,
  participant = {id = ARGV[10], s = w.s, r = w.r, n = w.n, j = NOW}})
return {'ok', rec}
`)

// ARGV 9 wid, 10 ban ('1' or '0').
var denyWaitingScript = roomScript(`
if not exists() then return {'notfound'} end
prune()
local raw = redis.call('HGET', K_WAIT, ARGV[9])
if not raw then return {'notfound'} end
local w = cjson.decode(raw)
drop_wait(ARGV[9])
decide(ARGV[9], w, {st = 'denied'})
publish({kind = 'lobby_denied', wait_id = ARGV[9], subject = w.s})
if ARGV[10] == '1' then
  local ev = {kind = 'banned', subject = w.s}
  local revoked = ban(w.s, w.n)
  if #revoked > 0 then ev.revoked = revoked end
  publish(ev)
end
refresh_ttl()
return {'ok'}
`)

// ARGV 9 wid. Returns {'outcome', json} or {'waiting', record} or {'notfound'}.
var waitStatusScript = roomScript(`
local o = redis.call('GET', OUTCOME_PREFIX .. ARGV[9])
if o then return {'outcome', o} end
if not exists() then return {'notfound'} end
local until_ms = tonumber(redis.call('ZSCORE', K_WAITQ, ARGV[9]))
if until_ms == nil or until_ms <= NOW then return {'notfound'} end
return {'waiting', redis.call('HGET', K_WAIT, ARGV[9])}
`)

// ARGV 9 '1' to lock, '0' to unlock.
var lockScript = roomScript(`
if not exists() then return {'notfound'} end
if redis.call('HGET', K_META, 'locked') ~= ARGV[9] then
  redis.call('HSET', K_META, 'locked', ARGV[9])
  if ARGV[9] == '1' then publish({kind = 'locked'}) else publish({kind = 'unlocked'}) end
end
return {'ok'}
`)

// Returns {'ok', revoked}.
var suspendScript = roomScript(`
if not exists() then return {'notfound'} end
prune()
redis.call('HSET', K_META, 'locked', '1')
local revoked = {}
local all = redis.call('HGETALL', K_PARTS)
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).r ~= 'host' then revoked[#revoked + 1] = all[i] end
end
for _, pid in ipairs(revoked) do drop_participant(pid) end
local waits = redis.call('HGETALL', K_WAIT)
for i = 1, #waits, 2 do
  local w = cjson.decode(waits[i + 1])
  drop_wait(waits[i])
  decide(waits[i], w, {st = 'denied'})
end
table.sort(revoked)
local ev = {kind = 'suspended'}
if #revoked > 0 then ev.revoked = revoked end
publish(ev)
refresh_ttl()
return {'ok', revoked}
`)

// Rate-limit scripts: KEYS 1 the IP's hash, 2 the identity's (optional).
// Fields: w window index, a attempts and f failures in window w,
// pf passcode failures (valid until pfx ms), blk blocked until ms.
const limitPrelude = `
local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local WIN_MS, FMEM_MS = tonumber(ARGV[1]), tonumber(ARGV[2])
local WIN = math.floor(NOW / WIN_MS)

local function roll(k)
  if tonumber(redis.call('HGET', k, 'w')) ~= WIN then redis.call('HSET', k, 'w', WIN, 'a', 0, 'f', 0) end
end

local function field(k, f)
  return tonumber(redis.call('HGET', k, f)) or 0
end

local function passcode_failures(k)
  if field(k, 'pfx') > NOW then return field(k, 'pf') end
  return 0
end

-- keep_alive keeps a key as long as any of its counts or blocks matters.
local function keep_alive(k)
  local ttl = math.max(2 * WIN_MS, field(k, 'pfx') - NOW, field(k, 'blk') - NOW)
  redis.call('PEXPIRE', k, math.floor(ttl))
end

local function counts(status, retry)
  local out = {status, math.floor(retry), 0, 0, 0, 0, 0, 0}
  for i, k in ipairs(KEYS) do
    if tonumber(redis.call('HGET', k, 'w')) == WIN then
      out[3 * i] = field(k, 'a')
      out[3 * i + 1] = field(k, 'f')
    end
    out[3 * i + 2] = passcode_failures(k)
  end
  return out
end
`

// ARGV 3 attempts limit for the IP, 4 for the identity.
// Returns {status, retry ms, ip a, ip f, ip pf, id a, id f, id pf}.
var beginJoinScript = redis.NewScript(limitPrelude + `
local blocked = 0
for _, k in ipairs(KEYS) do
  blocked = math.max(blocked, field(k, 'blk') - NOW)
end
if blocked > 0 then return counts('blocked', blocked) end
local over = 0
for i, k in ipairs(KEYS) do
  roll(k)
  if redis.call('HINCRBY', k, 'a', 1) > tonumber(ARGV[2 + i]) then over = (WIN + 1) * WIN_MS - NOW end
  keep_alive(k)
end
if over > 0 then return counts('limited', over) end
return counts('ok', 0)
`)

// ARGV 3 '1' for a passcode failure, 4 threshold for the IP, 5 for the
// identity, 6 backoff base ms, 7 backoff max ms. Same reply as beginJoin.
var recordFailureScript = redis.NewScript(limitPrelude + `
local block = 0
for i, k in ipairs(KEYS) do
  roll(k)
  redis.call('HINCRBY', k, 'f', 1)
  if ARGV[3] == '1' then
    local n = passcode_failures(k) + 1
    redis.call('HSET', k, 'pf', n, 'pfx', NOW + FMEM_MS)
    local threshold = tonumber(ARGV[3 + i])
    if n >= threshold then
      block = math.max(block, math.min(tonumber(ARGV[7]), tonumber(ARGV[6]) * 2 ^ (n - threshold)))
    end
  end
end
if block > 0 then
  for _, k in ipairs(KEYS) do
    if field(k, 'blk') < NOW + block then redis.call('HSET', k, 'blk', math.floor(NOW + block)) end
  end
end
for _, k in ipairs(KEYS) do keep_alive(k) end
return counts('ok', 0)
`)

var allScripts = []*redis.Script{
	putScript, roomViewScript, factsScript, admitScript, touchScript, leaveScript, removeScript, knockScript,
	admitWaitingScript, denyWaitingScript, waitStatusScript, lockScript, suspendScript, beginJoinScript,
	recordFailureScript,
}
