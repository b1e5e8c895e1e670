-- Returns {'ok', revoked}.
if not exists() then return {'notfound'} end
prune()
redis.call('HSET', K_META, 'locked', '1')
local revoked = {}
local all = redis.call('HGETALL', K_PARTS)
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).r ~= 'host' then revoked[#revoked + 1] = all[i] end
end
for _, pid in ipairs(revoked) do drop_participant(pid) end
local waits = redis.call('HGETALL', K_WAIT)
for i = 1, #waits, 2 do
  local w = cjson.decode(waits[i + 1])
  drop_wait(waits[i])
  decide(waits[i], w, {st = 'denied'})
end
table.sort(revoked)
local ev = {kind = 'suspended'}
if #revoked > 0 then ev.revoked = revoked end
publish(ev)
refresh_ttl()
return {'ok', revoked}
