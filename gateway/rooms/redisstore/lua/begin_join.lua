-- begin_join counts a join attempt against at most limit attempts per
-- identity and returns counts; status 'blocked' (identity backoff),
-- 'address' (the address is over its limit and the identity failed
-- itself), 'limited' (the identity's attempts), or 'ok'. A refused attempt
-- is not counted. The begin_join script calls it with ARGV 8, start_join
-- with its own argument.
local function begin_join(limit)
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
    if n > limit then return counts('limited', window_left, 0) end
  end
  return counts('ok', 0, 0)
end
