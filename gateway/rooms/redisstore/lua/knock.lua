-- ARGV 9 wid, 10 subject, 11 role, 12 name, 13 cap per room, 14 knock ms,
-- 15 device, 16 email domain, 17 verdict (comma-separated). The subject's earlier knocks are replaced (dropped without an
-- outcome): one person, one place in the lobby.
if not exists() then return {'notfound'} end
if redis.call('HEXISTS', K_BANS, ARGV[10]) == 1 then return {'banned'} end
prune()
if redis.call('HGET', K_META, 'locked') == '1' then return {'locked'} end
local mine = {}
local all = redis.call('HGETALL', K_WAIT)
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).s == ARGV[10] then mine[#mine + 1] = all[i] end
end
if redis.call('HLEN', K_WAIT) - #mine >= tonumber(ARGV[13]) then return {'lobbyfull'} end
for _, wid in ipairs(mine) do drop_wait(wid) end
redis.call('HSET', K_WAIT, ARGV[9], cjson.encode({s = ARGV[10], r = ARGV[11], n = ARGV[12], t = NOW, h = NOW, d = ARGV[15], e = ARGV[16], v = ARGV[17]}))
redis.call('ZADD', K_WAITQ, math.min(NOW + WAIT_MS, NOW + tonumber(ARGV[14])), ARGV[9])
refresh_ttl()
publish({kind = 'knocked', wait_id = ARGV[9], subject = ARGV[10]})
return {'ok', NOW}
