-- Append (ARGV[8] 'R') or prepend ('L') ARGV[9] entries, then node specs.
local id = ARGV[6]
local n = tonumber(ARGV[9])
local specs = 10 + n
local values, first, last = ARGV, 10, 9 + n
if ARGV[8] ~= 'R' then
  values, first, last = {}, 1, n
  for j = 9 + n, 10, -1 do values[#values + 1] = ARGV[j] end
end
local command = (ARGV[8] == 'R') and 'RPUSH' or 'LPUSH'

-- RPUSHX and LPUSHX push only onto an existing key, and a node's key is
-- deleted with the node. So scalars pushed onto a non-empty list need no
-- liveness check, and the check runs only when the key is missing.
local length = nil
if n > 0 and ARGV[specs] == '0' then length = push_chunks(command .. 'X', nkey(id), values, first, last) end
if not length or length == 0 then
  check_alive(id)
  check_nodes(specs)
  create_nodes(specs)
  length = push_chunks(command, nkey(id), values, first, last)
end
changed()
return length or redis.call('LLEN', nkey(id))
