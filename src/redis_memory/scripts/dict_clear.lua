-- Function flags: allow-oom
-- Remove every key of a dict node and every node below it.
local id = ARGV[6]
check_alive(id)
local values = redis.call('HVALS', nkey(id))
for j = 1, #values do drop(values[j]) end
redis.call('UNLINK', nkey(id), okey(id))
if id == 'root' then redis.call('UNLINK', P .. 'mtime') end
changed()
return #values
