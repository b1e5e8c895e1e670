-- ARGV 9 subject ('' for none).
local banned = 0
if ARGV[9] ~= '' and redis.call('HEXISTS', K_BANS, ARGV[9]) == 1 then banned = 1 end
if not exists() then return {'missing', banned} end
prune()
return {'ok', banned, redis.call('HLEN', K_PARTS), redis.call('HGETALL', K_META)}
