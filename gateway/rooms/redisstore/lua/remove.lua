-- ARGV 9 pid, 10 ban ('1' or '0'). Returns {'ok', subject, revoked}.
if not exists() then return {'notfound'} end
local raw = redis.call('HGET', K_PARTS, ARGV[9])
if not raw then return {'notadmitted'} end
local p = cjson.decode(raw)
local revoked
if ARGV[10] == '1' then
  revoked = ban(p.s, p.n)
  publish({kind = 'banned', subject = p.s, revoked = revoked})
else
  drop_participant(ARGV[9])
  revoked = {ARGV[9]}
  publish({kind = 'removed', subject = p.s, revoked = revoked})
end
refresh_ttl()
return {'ok', p.s, revoked}
