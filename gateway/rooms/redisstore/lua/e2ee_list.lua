-- Lists the live e2ee entries whose names start with a prefix, in name
-- order, as a flat name/value list; names of entries that expired are
-- dropped from the index on the way.
-- KEYS 1 the name index. ARGV 1 the key namespace, 2 the name prefix.
local lo, hi = '-', '+'
if ARGV[2] ~= '' then lo, hi = '[' .. ARGV[2], '(' .. ARGV[2] .. '\255' end
local names = redis.call('ZRANGEBYLEX', KEYS[1], lo, hi)
local out = {}
for _, n in ipairs(names) do
  local v = redis.call('GET', ARGV[1] .. n)
  if v then
    out[#out + 1] = n
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], n)
  end
end
return out
