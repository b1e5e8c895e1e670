-- Rate-limit scripts: KEYS 1 the address's hash, 2 the identity's, 3 the
-- room's (2 and 3 are only touched when ARGV 4 and 5 are '1'). Every KEYS
-- and ARGV index here is after the offsets KO and AO, which a script sets
-- before this prelude: 0 for the rate-limit scripts, past the room
-- prelude's keys and arguments for start_join. NOW comes from clock.lua.
-- Fields: w window index, a attempts and f failures in window w; pf
-- passcode failures: for the identity valid until pfx ms, for the address
-- and the room in window w; blk blocked until ms.
-- ARGV 1 window ms, 2 failure memory ms, 3 room window ms, 4 has identity,
-- 5 has room, 6 the address's failure limit, 7 the room's budget.
local WIN_MS, FMEM_MS, RWIN_MS = tonumber(ARGV[AO + 1]), tonumber(ARGV[AO + 2]), tonumber(ARGV[AO + 3])
local WIN, RWIN = math.floor(NOW / WIN_MS), math.floor(NOW / RWIN_MS)
local IPK, IDK, RK = KEYS[KO + 1], KEYS[KO + 2], KEYS[KO + 3]
local HAS_ID, HAS_ROOM = ARGV[AO + 4] == '1', ARGV[AO + 5] == '1'
local ADDR_LIMIT, ROOM_BUDGET = tonumber(ARGV[AO + 6]), tonumber(ARGV[AO + 7])

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
