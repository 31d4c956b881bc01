-- Function flags: allow-oom
-- Remove every key of a dict node and every node below it.
local id = ARGV[6]
check_alive(id)
local values = redis.call('HVALS', nkey(id))
local count = #values
if count > 0 and inline_order(id) then count = count - 1 end
for j = 1, #values do drop(values[j]) end
redis.call('UNLINK', nkey(id), okey(id))
if id == 'root' then redis.call('UNLINK', P .. 'mtime') end
changed()
return count
