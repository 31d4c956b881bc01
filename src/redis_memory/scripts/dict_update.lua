-- Set keys of a dict node: ARGV[8] pair count; per pair: alias count, the key's
-- aliases (its own encoding first, then equal keys of other numeric types),
-- the value; then node specs. An existing alias keeps its field and position.
local id = ARGV[6]
local nk, ok = nkey(id), okey(id)
local pairs_at = {}
local i = 9
for _ = 1, tonumber(ARGV[8]) do
  pairs_at[#pairs_at + 1] = i
  i = i + tonumber(ARGV[i]) + 2
end

-- Return the field and value of the first of the key's aliases present, else nil.
local function find(at)
  for a = at + 1, at + tonumber(ARGV[at]) do
    local old = redis.call('HGET', nk, ARGV[a])
    if old then return ARGV[a], old end
  end
  return nil, nil
end

-- A key found in the node's hash proves the node alive, because a node's
-- keys are deleted with it. So one pair without nested values that replaces
-- a value, the common d[k] = v, needs no liveness check.
local first_field, first_old = nil, nil
if #pairs_at == 1 and ARGV[i] == '0' then first_field, first_old = find(pairs_at[1]) end
if not first_field then check_alive(id) end
check_nodes(i)
create_nodes(i)

-- The last insertion score, read when the first new key is added.
local score = nil
local added = 0
for p, at in ipairs(pairs_at) do
  local count = tonumber(ARGV[at])
  local field, old
  if p == 1 and first_field then
    field, old = first_field, first_old
  else
    field, old = find(at)
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
