-- Function flags: no-writes
-- Return the entry at index ARGV[3] (negative counts from the end).
local id = ARGV[2]
local v = redis.call('LINDEX', nkey(id), tonumber(ARGV[3]))
if v then return v end
check_alive(id)
fail('RM_INDEX list index out of range')
