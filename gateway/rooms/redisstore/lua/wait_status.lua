-- ARGV 9 wid. Returns {'outcome', json} or {'waiting', record} or {'notfound'}.
local o = redis.call('GET', OUTCOME_PREFIX .. ARGV[9])
if o then return {'outcome', o} end
if not exists() then return {'notfound'} end
local until_ms = tonumber(redis.call('ZSCORE', K_WAITQ, ARGV[9]))
if until_ms == nil or until_ms <= NOW then return {'notfound'} end
return {'waiting', redis.call('HGET', K_WAIT, ARGV[9])}
