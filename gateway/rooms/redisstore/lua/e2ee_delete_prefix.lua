-- Deletes every e2ee entry whose name starts with a prefix (a meeting's
-- whole state, an epoch's sealed secrets) and its index entries.
-- KEYS 1 the name index. ARGV 1 the key namespace, 2 the name prefix, 3 the
-- channel, told so that long-polls on a deleted counter end on every node.
local lo, hi = '-', '+'
if ARGV[2] ~= '' then lo, hi = '[' .. ARGV[2], '(' .. ARGV[2] .. '\255' end
local names = redis.call('ZRANGEBYLEX', KEYS[1], lo, hi)
for i = 1, #names, 500 do
  local batch = {}
  for j = i, math.min(i + 499, #names) do batch[#batch + 1] = ARGV[1] .. names[j] end
  redis.call('DEL', unpack(batch))
end
redis.call('ZREMRANGEBYLEX', KEYS[1], lo, hi)
if #names > 0 then redis.call('PUBLISH', ARGV[3], 'p' .. ARGV[2]) end
return #names
