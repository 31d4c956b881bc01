-- Function flags: allow-oom
-- Delete the slice ARGV[8]:ARGV[9]:ARGV[10]; return how many entries went.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local n = redis.call('LLEN', nk)
local start, _, step, count = slice_indices(
  n, optional_number(ARGV[8]), optional_number(ARGV[9]), tonumber(ARGV[10]))
if count == 0 then return 0 end
local last = start + (count - 1) * step
local lo, hi = math.min(start, last), math.max(start, last)
local removed
if step == 1 or step == -1 then
  removed = redis.call('LRANGE', nk, lo, hi)
  if lo == 0 and hi == n - 1 then
    redis.call('DEL', nk)
  elseif lo == 0 then
    redis.call('LTRIM', nk, hi + 1, -1)
  elseif hi == n - 1 then
    redis.call('LTRIM', nk, 0, lo - 1)
  elseif lo <= n - 1 - hi then
    local head = redis.call('LRANGE', nk, 0, lo - 1)
    redis.call('LTRIM', nk, hi + 1, -1)
    local front = {}
    for j = #head, 1, -1 do front[#front + 1] = head[j] end
    push_chunks('LPUSH', nk, front, 1, #front)
  else
    local tail = redis.call('LRANGE', nk, hi + 1, -1)
    redis.call('LTRIM', nk, 0, lo - 1)
    push_chunks('RPUSH', nk, tail, 1, #tail)
  end
else
  local all = redis.call('LRANGE', nk, 0, -1)
  local gone = {}
  removed = {}
  for j = 0, count - 1 do
    local at = start + j * step + 1
    gone[at] = true
    removed[#removed + 1] = all[at]
  end
  local kept = {}
  for j = 1, n do
    if not gone[j] then kept[#kept + 1] = all[j] end
  end
  redis.call('DEL', nk)
  push_chunks('RPUSH', nk, kept, 1, #kept)
end
for j = 1, #removed do drop(removed[j]) end
changed()
return count
