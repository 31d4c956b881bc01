-- Append (ARGV[8] 'R') or prepend ('L') ARGV[9] entries, then node specs.
local id = ARGV[6]
check_alive(id)
local n = tonumber(ARGV[9])
local specs = 10 + n
check_nodes(specs)
create_nodes(specs)
local length
if ARGV[8] == 'R' then
  length = push_chunks('RPUSH', nkey(id), ARGV, 10, 9 + n)
else
  local reversed = {}
  for j = 9 + n, 10, -1 do reversed[#reversed + 1] = ARGV[j] end
  length = push_chunks('LPUSH', nkey(id), reversed, 1, n)
end
changed()
return length or redis.call('LLEN', nkey(id))
