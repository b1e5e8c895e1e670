-- ARGV 9 wid, 10 new pid. Returns {'ok', participant record}.
if not exists() then return {'notfound'} end
prune()
local raw = redis.call('HGET', K_WAIT, ARGV[9])
if not raw then return {'notfound'} end
local w = cjson.decode(raw)
if redis.call('HEXISTS', K_BANS, w.s) == 1 then
  drop_wait(ARGV[9])
  decide(ARGV[9], w, {st = 'denied'})
  return {'banned'}
end
if is_full() then return {'full'} end
drop_wait(ARGV[9])
local rec = add_participant(ARGV[10], w.s, w.r, w.n)
decide(ARGV[9], w, {st = 'admitted', id = ARGV[10], r = w.r, n = w.n, j = NOW})
refresh_ttl()
publish({kind = 'lobby_admitted', wait_id = ARGV[9], subject = w.s,
  participant = {id = ARGV[10], s = w.s, r = w.r, n = w.n, j = NOW}})
return {'ok', rec}
