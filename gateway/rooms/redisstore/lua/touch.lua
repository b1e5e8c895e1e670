-- ARGV 9 pid. Renews the lease; refreshes the room's expiry only when it
-- has run down by half a lease, so a touch is usually three commands.
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
