-- ARGV 9 pid, 10 role. Returns {'ok', from role, participant record};
-- 'notgranted' for host to an admission not made as host, 'lasthost' for
-- demoting the room's only admitted host.
if not exists() then return {'notfound'} end
prune()
local raw = redis.call('HGET', K_PARTS, ARGV[9])
if not raw then
  refresh_ttl()
  return {'notadmitted'}
end
local p = cjson.decode(raw)
local role = ARGV[10]
if p.r == role then return {'ok', p.r, raw} end
if role == 'host' and (p.g or p.r) ~= 'host' then return {'notgranted'} end
if p.r == 'host' and tonumber(redis.call('HGET', K_META, 'hosts') or '0') <= 1 then return {'lasthost'} end
if p.r == 'host' then redis.call('HINCRBY', K_META, 'hosts', -1) end
if role == 'host' then redis.call('HINCRBY', K_META, 'hosts', 1) end
local from = p.r
local rec = cjson.encode({s = p.s, r = role, n = p.n, j = p.j, g = p.g or from})
redis.call('HSET', K_PARTS, ARGV[9], rec)
publish({kind = 'role_changed', subject = p.s,
  participant = {id = ARGV[9], s = p.s, r = role, n = p.n, j = p.j}})
refresh_ttl()
return {'ok', from, rec}
