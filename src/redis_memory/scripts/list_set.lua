-- Replace the entry at index ARGV[8] with ARGV[9]; then node specs. Return 1
-- when the old entry was a nested list or dict, which is deleted, else 0.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local i = normalise_index(tonumber(ARGV[8]), redis.call('LLEN', nk))
if not i then fail('RM_INDEX list assignment index out of range') end
check_nodes(10)
create_nodes(10)
local old = redis.call('LINDEX', nk, i)
redis.call('LSET', nk, i, ARGV[9])
drop(old)
changed()
if DROPPED.any then return 1 end
return 0
