-- Insert ARGV[9] before index ARGV[8] as list.insert does; then node specs.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
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
