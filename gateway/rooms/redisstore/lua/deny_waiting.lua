-- ARGV 9 wid, 10 ban ('1' or '0').
if not exists() then return {'notfound'} end
prune()
local raw = redis.call('HGET', K_WAIT, ARGV[9])
if not raw then return {'notfound'} end
local w = cjson.decode(raw)
drop_wait(ARGV[9])
decide(ARGV[9], w, {st = 'denied'})
publish({kind = 'lobby_denied', wait_id = ARGV[9], subject = w.s})
if ARGV[10] == '1' then
  local ev = {kind = 'banned', subject = w.s}
  local revoked = ban(w.s, w.n)
  if #revoked > 0 then ev.revoked = revoked end
  publish(ev)
end
refresh_ttl()
return {'ok'}
