-- KEYS 1 the room's rate-limit hash; ARGV 1 the room window ms. Returns
-- the wrong passcodes in the current window.
local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local RWIN = math.floor(NOW / tonumber(ARGV[1]))
if tonumber(redis.call('HGET', KEYS[1], 'w')) ~= RWIN then return 0 end
return tonumber(redis.call('HGET', KEYS[1], 'pf')) or 0
