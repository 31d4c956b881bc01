-- Assign ARGV[11] new entries (ARGV[12..]) to the slice ARGV[8]:ARGV[9]:ARGV[10],
-- as list slice assignment does; then node specs.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local n = redis.call('LLEN', nk)
local start, stop, step, count = slice_indices(
  n, optional_number(ARGV[8]), optional_number(ARGV[9]), tonumber(ARGV[10]))
local m = tonumber(ARGV[11])
local first, last = 12, 11 + m
if step ~= 1 and m ~= count then
  fail('RM_VALUE attempt to assign sequence of size ' .. m
    .. ' to extended slice of size ' .. count)
end
check_nodes(last + 1)
create_nodes(last + 1)

if step == 1 then
  local a = start
  local b = math.max(stop, start)
  local removed = {}
  if b > a then removed = redis.call('LRANGE', nk, a, b - 1) end
  if a <= n - b then
    -- Rebuild the head: keep entries from b on, push the new ones and the old head in front.
    local head = {}
    if a > 0 then head = redis.call('LRANGE', nk, 0, a - 1) end
    redis.call('LTRIM', nk, b, -1)
    local front = {}
    for j = last, first, -1 do front[#front + 1] = ARGV[j] end
    for j = #head, 1, -1 do front[#front + 1] = head[j] end
    push_chunks('LPUSH', nk, front, 1, #front)
  else
    -- Rebuild the tail: keep entries before a, push the new ones and the old tail behind.
    local tail = {}
    if b < n then tail = redis.call('LRANGE', nk, b, -1) end
    if a == 0 then
      redis.call('DEL', nk)
    else
      redis.call('LTRIM', nk, 0, a - 1)
    end
    push_chunks('RPUSH', nk, ARGV, first, last)
    push_chunks('RPUSH', nk, tail, 1, #tail)
  end
  for j = 1, #removed do drop(removed[j]) end
elseif count > 0 then
  local all = redis.call('LRANGE', nk, 0, -1)
  for j = 0, count - 1 do
    local at = start + j * step + 1
    drop(all[at])
    all[at] = ARGV[first + j]
  end
  redis.call('DEL', nk)
  push_chunks('RPUSH', nk, all, 1, #all)
end
changed()
return count
