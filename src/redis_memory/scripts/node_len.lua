-- Function flags: no-writes
-- Return the number of entries of a node.
local id = ARGV[2]
local kind = kind_of(id)
if kind == 'list' then return redis.call('LLEN', nkey(id)) end
local n = redis.call('HLEN', nkey(id))
if n > 0 and inline_order(id) then return n - 1 end
return n
