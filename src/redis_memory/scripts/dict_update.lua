-- Set keys of a dict node: ARGV[8] pair count; per pair: alias count, the key's
-- aliases (its own encoding first, then equal keys of other numeric types),
-- the value; then node specs. An existing alias keeps its field and position.
local id = ARGV[6]
check_alive(id)
local nk, ok = nkey(id), okey(id)
local pairs_at = {}
local i = 9
for _ = 1, tonumber(ARGV[8]) do
  pairs_at[#pairs_at + 1] = i
  i = i + tonumber(ARGV[i]) + 2
end
check_nodes(i)
create_nodes(i)

local last = redis.call('ZRANGE', ok, -1, -1, 'WITHSCORES')
local score = tonumber(last[2] or 0)
local added = 0
for _, at in ipairs(pairs_at) do
  local count = tonumber(ARGV[at])
  local field = nil
  for a = at + 1, at + count do
    if redis.call('HEXISTS', nk, ARGV[a]) == 1 then
      field = ARGV[a]
      break
    end
  end
  local value = ARGV[at + count + 1]
  if field then
    local old = redis.call('HGET', nk, field)
    redis.call('HSET', nk, field, value)
    drop(old)
  else
    field = ARGV[at + 1]
    score = score + 1
    added = added + 1
    redis.call('HSET', nk, field, value)
    redis.call('ZADD', ok, score, field)
  end
  if id == 'root' then touch(field) end
end
changed()
return added
