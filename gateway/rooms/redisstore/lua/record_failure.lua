-- ARGV 8 '1' for a passcode failure, 9 '1' when the identity is a
-- member, 10 the identity's passcode threshold, 11 backoff base ms, 12
-- backoff max ms. Returns counts with status 'ok'.
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
