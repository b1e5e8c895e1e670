-- Takes one e2ee entry: read and delete in one step, so that of concurrent
-- takes on any nodes at most one gets it.
-- KEYS 1 the entry, 2 the name index. ARGV 1 the entry's name.
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return v
