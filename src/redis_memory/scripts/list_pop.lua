-- Function flags: allow-oom
-- Remove the entry at index ARGV[8] ('' for the last) and return {entry,
-- subtree dump...}. ARGV[9] 'pop' or 'del' selects the error text, ARGV[10]
-- '1' requests the dump of a container entry.
local id = ARGV[6]
local nk = nkey(id)
local is_pop = ARGV[9] == 'pop'
local value, i, n
if ARGV[8] == '' then
  -- The last entry needs no length. A node's key is deleted with the node, so
  -- only an empty reply can come from a deleted node.
  value = redis.call('RPOP', nk)
  if not value then
    check_alive(id)
    fail('RM_INDEX pop from empty list')
  end
else
  check_alive(id)
  n = redis.call('LLEN', nk)
  if n == 0 and is_pop then fail('RM_INDEX pop from empty list') end
  i = normalise_index(tonumber(ARGV[8]), n)
  if not i then
    if is_pop then fail('RM_INDEX pop index out of range') end
    fail('RM_INDEX list assignment index out of range')
  end
  value = redis.call('LINDEX', nk, i)
end
local out = {value}
local kind, child = ref_of(value)
if kind and ARGV[10] == '1' then
  -- A subtree found corrupt must leave the list as it was.
  local dumped, err = pcall(dump_into, out, kind, child)
  if not dumped then
    if not i then redis.call('RPUSH', nk, value) end
    error(err, 0)
  end
end
if i then remove_at(nk, i, n) end
drop(value)
changed()
return out
