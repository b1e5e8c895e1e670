-- NOW is Redis's clock (TIME) in ms, read once per script: every script
-- starts with this file, so nodes with skewed clocks agree on every lease,
-- window and expiry, and a script that does both room and rate-limit work
-- (start_join) sees one instant.
local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
