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

-- The last insertion score, read when the first new key is added.
local score = nil
local added = 0
for _, at in ipairs(pairs_at) do
  local count = tonumber(ARGV[at])
  local field, old = nil, nil
  for a = at + 1, at + count do
    old = redis.call('HGET', nk, ARGV[a])
    if old then
      field = ARGV[a]
      break
    end
  end
  local value = ARGV[at + count + 1]
  if field then
    redis.call('HSET', nk, field, value)
    drop(old)
  else
    if not score then
      local last = redis.call('ZRANGE', ok, -1, -1, 'WITHSCORES')
      score = tonumber(last[2] or 0)
    end
    field = ARGV[at + 1]
    score = score + 1
    added = added + 1
    redis.call('HSET', nk, field, value)
    redis.call('ZADD', ok, score, field)
  end
  if id == 'root' then touch(field) end
end
changed()
-- Twice the keys added, plus 1 when a replaced value was a nested list or dict.
if DROPPED.any then return added * 2 + 1 end
return added * 2
