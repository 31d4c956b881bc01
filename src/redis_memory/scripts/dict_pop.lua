-- Function flags: allow-oom
-- Remove one key and return {field, value, subtree dump...}, or nil when absent.
-- ARGV[8] 'last' (popitem) or 'key'; ARGV[9] '1' to dump a container value;
-- for 'key', the aliases follow from ARGV[10].
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local field = nil
if ARGV[8] == 'last' then
  -- The first field from the end that the hash holds is the newest key;
  -- the stale entries popped on the way were due to go.
  repeat
    local candidate = order_call('RPOP', id)
    if candidate and redis.call('HEXISTS', nk, candidate) == 1 then field = candidate end
  until field or not candidate
else
  for a = 10, #ARGV do
    if redis.call('HEXISTS', nk, ARGV[a]) == 1 then
      field = ARGV[a]
      break
    end
  end
end
if not field then return false end
local value = redis.call('HGET', nk, field)
local out = {field, value}
local kind, child = ref_of(value)
if kind and ARGV[9] == '1' then dump_into(out, kind, child) end
redis.call('HDEL', nk, field)
tidy_order(id)
drop(value)
if id == 'root' then untouch(field) end
changed()
return out
