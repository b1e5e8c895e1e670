-- ARGV 9 wid, 10 knock ms. Renews a live knock: it now expires knock ms
-- from now, but never later than wait ms after it was made.
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
