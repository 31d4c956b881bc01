-- Function flags: allow-oom
-- Remove one key and return {field, value, subtree dump...}, or nil when absent.
-- ARGV[8] 'last' (popitem) or 'key'; ARGV[9] '1' to dump a container value;
-- for 'key', the aliases follow from ARGV[10].
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local field = nil
local text = false
if ARGV[8] == 'last' then
  text = inline_order(id)
  if text then
    local fields = split_order(text)
    field = fields[#fields]
  else
    -- The first field from the end that the hash contains is the newest key.
    -- Stale entries on the way are popped, and the key's own entry only once
    -- its value was read, so that a failed dump leaves the order whole.
    repeat
      local candidate = order_call('LINDEX', id, -1)
      if not candidate then break end
      if redis.call('HEXISTS', nk, candidate) == 1 then
        field = candidate
      else
        redis.call('RPOP', okey(id))
      end
    until field
  end
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
if ARGV[8] ~= 'last' or text then
  remove_order(id, field)
else
  redis.call('RPOP', okey(id))
  tidy_order(id)
end
drop(value)
if id == 'root' then untouch(field) end
changed()
return out
