-- Replace every entry of a list node with ARGV[9] new entries (ARGV[10..]),
-- then node specs, if the current entries joined by newlines are ARGV[8]
-- (ARGV[7] 'clear' skips the check). The whole text is compared rather than a
-- hash because fakeredis has no redis.sha1hex.
-- Children referenced before but not after are deleted. Return 1, or 0 when
-- the list changed since it was read.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local current = redis.call('LRANGE', nk, 0, -1)
if ARGV[7] ~= 'clear' and table.concat(current, '\n') ~= ARGV[8] then
  return 0
end
local m = tonumber(ARGV[9])
local first, last = 10, 9 + m
check_nodes(last + 1)
local kept = {}
for j = first, last do
  if ref_of(ARGV[j]) then kept[ARGV[j]] = true end
end
for j = 1, #current do
  if not kept[current[j]] then drop(current[j]) end
end
create_nodes(last + 1)
redis.call('DEL', nk)
push_chunks('RPUSH', nk, ARGV, first, last)
changed()
return 1
