-- Stores one e2ee entry and indexes its name, so that List and DeletePrefix
-- find it by prefix without SCAN.
-- KEYS 1 the entry, 2 the name index (zset, every score 0).
-- ARGV 1 value, 2 ttl ms (0: none), 3 the entry's name, 4 'NX' to create
-- only if absent. Returns 1 if stored, 0 if NX found a live entry.
local ok
if ARGV[4] == 'NX' then
  if tonumber(ARGV[2]) > 0 then
    ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
  else
    ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
  end
else
  if tonumber(ARGV[2]) > 0 then
    ok = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  else
    ok = redis.call('SET', KEYS[1], ARGV[1])
  end
end
if not ok then return 0 end
redis.call('ZADD', KEYS[2], 0, ARGV[3])
return 1
