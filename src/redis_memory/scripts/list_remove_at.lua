-- Function flags: allow-oom
-- Delete the entry at index ARGV[8] if it still is ARGV[9]; return 1, else 0.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local i = tonumber(ARGV[8])
if redis.call('LINDEX', nk, i) ~= ARGV[9] then return 0 end
local value = remove_at(nk, i, redis.call('LLEN', nk))
drop(value)
changed()
return 1
