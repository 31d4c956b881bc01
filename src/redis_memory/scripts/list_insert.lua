-- Insert ARGV[9] before index ARGV[8] as list.insert does; then node specs.
local id = ARGV[6]
local nk = nkey(id)
-- A scalar inserted at the front of a non-empty list: LPUSHX pushes only onto
-- an existing key, and a node's key is deleted with the node, so it proves
-- the node alive and the liveness check is spared.
if ARGV[8] == '0' and ARGV[10] == '0' and redis.call('LPUSHX', nk, ARGV[9]) > 0 then
  changed()
  return 0
end
check_alive(id)
check_nodes(10)
create_nodes(10)
local value = ARGV[9]
local i = tonumber(ARGV[8])
if i == 0 then
  -- The front needs no length.
  redis.call('LPUSH', nk, value)
  changed()
  return 0
end
local n = redis.call('LLEN', nk)
if i < 0 then
  i = math.max(i + n, 0)
elseif i > n then
  i = n
end
if i == n then
  redis.call('RPUSH', nk, value)
elseif i == 0 then
  redis.call('LPUSH', nk, value)
elseif i <= n / 2 then
  -- LINSERT finds its pivot from the head, so mark index i and insert before the mark.
  local old = redis.call('LINDEX', nk, i)
  redis.call('LSET', nk, i, MARK)
  redis.call('LINSERT', nk, 'BEFORE', MARK, value)
  redis.call('LSET', nk, i + 1, old)
else
  local tail = redis.call('LRANGE', nk, i, -1)
  redis.call('LTRIM', nk, 0, i - 1)
  redis.call('RPUSH', nk, value)
  push_chunks('RPUSH', nk, tail, 1, #tail)
end
changed()
return i
