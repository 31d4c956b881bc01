-- Return {0, value} when a key aliased by ARGV[9..] exists, else store the
-- default and return {1, default}. ARGV[8] alias count; then the default, then node specs.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local count = tonumber(ARGV[8])
for a = 9, 8 + count do
  local v = redis.call('HGET', nk, ARGV[a])
  if v then return {0, v} end
end
local value = ARGV[9 + count]
check_nodes(10 + count)
create_nodes(10 + count)
redis.call('HSET', nk, ARGV[9], value)
append_order(id, {ARGV[9]})
if id == 'root' then touch(ARGV[9]) end
changed()
return {1, value}
