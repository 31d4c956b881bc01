-- Reverse a list node in place.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local current = redis.call('LRANGE', nk, 0, -1)
if #current > 1 then
  redis.call('DEL', nk)
  push_chunks('LPUSH', nk, current, 1, #current)
end
changed()
return #current
