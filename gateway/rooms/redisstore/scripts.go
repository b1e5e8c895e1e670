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

// ARGV 9 owner, 10 default capacity, 11 change (JSON object of meta fields),
// 12 '1' for create-only: an existing room is answered 'exists' untouched.
var putScript = roomScript(`
local created = 0
if exists() and ARGV[12] == '1' then return {'exists'} end
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

// ARGV 9 wid, 10 subject, 11 role, 12 name, 13 cap per room, 14 knock ms,
// 15 device. The subject's earlier knocks are replaced (dropped without an
// outcome): one person, one place in the lobby.
var knockScript = roomScript(`
if not exists() then return {'notfound'} end
if redis.call('HEXISTS', K_BANS, ARGV[10]) == 1 then return {'banned'} end
prune()
if redis.call('HGET', K_META, 'locked') == '1' then return {'locked'} end
local mine = {}
local all = redis.call('HGETALL', K_WAIT)
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).s == ARGV[10] then mine[#mine + 1] = all[i] end
end
if redis.call('HLEN', K_WAIT) - #mine >= tonumber(ARGV[13]) then return {'lobbyfull'} end
for _, wid in ipairs(mine) do drop_wait(wid) end
redis.call('HSET', K_WAIT, ARGV[9], cjson.encode({s = ARGV[10], r = ARGV[11], n = ARGV[12], t = NOW, h = NOW, d = ARGV[15]}))
redis.call('ZADD', K_WAITQ, math.min(NOW + WAIT_MS, NOW + tonumber(ARGV[14])), ARGV[9])
refresh_ttl()
publish({kind = 'knocked', wait_id = ARGV[9], subject = ARGV[10]})
return {'ok', NOW}
`)

// ARGV 9 wid, 10 knock ms. Renews a live knock: it now expires knock ms
// from now, but never later than wait ms after it was made.
var heartbeatScript = roomScript(`
if not exists() then return {'notfound'} end
local raw = redis.call('HGET', K_WAIT, ARGV[9])
if not raw then return {'notfound'} end
local until_ms = tonumber(redis.call('ZSCORE', K_WAITQ, ARGV[9]))
if until_ms == nil or until_ms <= NOW then
  prune()
  return {'notfound'}
end
local w = cjson.decode(raw)
redis.call('ZADD', K_WAITQ, 'XX', math.min(w.t + WAIT_MS, NOW + tonumber(ARGV[10])), ARGV[9])
w.h = NOW
redis.call('HSET', K_WAIT, ARGV[9], cjson.encode(w))
return {'ok'}
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

// Rate-limit scripts: KEYS 1 the address's hash, 2 the identity's, 3 the
// room's (2 and 3 are only touched when ARGV 4 and 5 are '1').
// Fields: w window index, a attempts and f failures in window w; pf
// passcode failures: for the identity valid until pfx ms, for the address
// and the room in window w; blk blocked until ms.
// ARGV 1 window ms, 2 failure memory ms, 3 room window ms, 4 has identity,
// 5 has room, 6 the address's failure limit, 7 the room's budget.
const limitPrelude = `
local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local WIN_MS, FMEM_MS, RWIN_MS = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local WIN, RWIN = math.floor(NOW / WIN_MS), math.floor(NOW / RWIN_MS)
local IPK, IDK, RK = KEYS[1], KEYS[2], KEYS[3]
local HAS_ID, HAS_ROOM = ARGV[4] == '1', ARGV[5] == '1'
local ADDR_LIMIT, ROOM_BUDGET = tonumber(ARGV[6]), tonumber(ARGV[7])

local function field(k, f)
  return tonumber(redis.call('HGET', k, f)) or 0
end

local function roll(k, win, fields)
  if tonumber(redis.call('HGET', k, 'w')) ~= win then redis.call('HSET', k, 'w', win, unpack(fields)) end
end

local function in_window(k, win, f)
  if tonumber(redis.call('HGET', k, 'w')) == win then return field(k, f) end
  return 0
end

local function id_passcode_failures()
  if field(IDK, 'pfx') > NOW then return field(IDK, 'pf') end
  return 0
end

-- keep_alive keeps a key as long as any of its counts or blocks matters.
local function keep_alive(k, least)
  local ttl = math.max(least, field(k, 'pfx') - NOW, field(k, 'blk') - NOW)
  redis.call('PEXPIRE', k, math.floor(ttl))
end

-- counts: {status, retry ms, ip a f pf, id a f pf, room pf, window left ms,
-- began, identity passcode memory left ms}
local function counts(status, retry, began)
  local out = {status, math.floor(retry), in_window(IPK, WIN, 'a'), in_window(IPK, WIN, 'f'), in_window(IPK, WIN, 'pf'),
    0, 0, 0, 0, (WIN + 1) * WIN_MS - NOW, began, 0}
  if HAS_ID then
    out[6], out[7], out[8] = in_window(IDK, WIN, 'a'), in_window(IDK, WIN, 'f'), id_passcode_failures()
    if out[8] > 0 then out[12] = field(IDK, 'pfx') - NOW end
  end
  if HAS_ROOM then out[9] = in_window(RK, RWIN, 'pf') end
  return out
end
`

// Returns counts; status 'blocked' (identity backoff), 'address' (the
// address is over its limit and the identity failed itself), 'limited'
// (the identity's attempts), or 'ok'. ARGV 8 attempts limit per identity.
var beginJoinScript = redis.NewScript(limitPrelude + `
local window_left = (WIN + 1) * WIN_MS - NOW
if HAS_ID then
  local blocked = field(IDK, 'blk') - NOW
  if blocked > 0 then return counts('blocked', blocked, 0) end
end
if in_window(IPK, WIN, 'f') >= ADDR_LIMIT then
  if not HAS_ID or in_window(IDK, WIN, 'f') > 0 or id_passcode_failures() > 0 then
    return counts('address', window_left, 0)
  end
end
roll(IPK, WIN, {'a', 0, 'f', 0, 'pf', 0})
redis.call('HINCRBY', IPK, 'a', 1)
keep_alive(IPK, 2 * WIN_MS)
if HAS_ID then
  roll(IDK, WIN, {'a', 0, 'f', 0})
  local n = redis.call('HINCRBY', IDK, 'a', 1)
  keep_alive(IDK, 2 * WIN_MS)
  if n > tonumber(ARGV[8]) then return counts('limited', window_left, 0) end
end
return counts('ok', 0, 0)
`)

// ARGV 8 '1' for a passcode failure, 9 '1' when the identity is a
// member, 10 the identity's passcode threshold, 11 backoff base ms, 12
// backoff max ms. Returns counts with status 'ok'.
var recordFailureScript = redis.NewScript(limitPrelude + `
local passcode, member = ARGV[8] == '1', ARGV[9] == '1'
if HAS_ID then
  roll(IDK, WIN, {'a', 0, 'f', 0})
  redis.call('HINCRBY', IDK, 'f', 1)
  if passcode then
    local n = id_passcode_failures() + 1
    redis.call('HSET', IDK, 'pf', n, 'pfx', NOW + FMEM_MS)
    local threshold = tonumber(ARGV[10])
    if n >= threshold then
      local block = math.min(tonumber(ARGV[12]), tonumber(ARGV[11]) * 2 ^ (n - threshold))
      if field(IDK, 'blk') < NOW + block then redis.call('HSET', IDK, 'blk', math.floor(NOW + block)) end
    end
  end
  keep_alive(IDK, 2 * WIN_MS)
end
if passcode or not member then
  roll(IPK, WIN, {'a', 0, 'f', 0, 'pf', 0})
  redis.call('HINCRBY', IPK, 'f', 1)
  if passcode then redis.call('HINCRBY', IPK, 'pf', 1) end
  keep_alive(IPK, 2 * WIN_MS)
end
local began = 0
if passcode and HAS_ROOM then
  roll(RK, RWIN, {'pf', 0})
  if redis.call('HINCRBY', RK, 'pf', 1) == ROOM_BUDGET then began = 1 end
  keep_alive(RK, (RWIN + 1) * RWIN_MS - NOW)
end
return counts('ok', 0, began)
`)

// KEYS 1 the room's rate-limit hash; ARGV 1 the room window ms. Returns
// the wrong passcodes in the current window.
var passcodeBudgetScript = redis.NewScript(`
local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local RWIN = math.floor(NOW / tonumber(ARGV[1]))
if tonumber(redis.call('HGET', KEYS[1], 'w')) ~= RWIN then return 0 end
return tonumber(redis.call('HGET', KEYS[1], 'pf')) or 0
`)

var allScripts = []*redis.Script{
	putScript, roomViewScript, factsScript, admitScript, touchScript, leaveScript, removeScript, knockScript, heartbeatScript,
	admitWaitingScript, denyWaitingScript, waitStatusScript, lockScript, suspendScript, beginJoinScript,
	recordFailureScript, passcodeBudgetScript,
}
