-- Counts one change of an e2ee meeting and tells every node, whose waiting
-- long-polls then read the counter again.
-- KEYS 1 the counter, 2 the name index. ARGV 1 the counter's name, 2 the
-- channel.
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('PUBLISH', ARGV[2], 'k' .. ARGV[1])
return n
