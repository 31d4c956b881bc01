-- Remove the entry at index ARGV[8] ('' for the last) and return {entry,
-- subtree dump...}. ARGV[9] 'pop' or 'del' selects the error text, ARGV[10]
-- '1' requests the dump of a container entry.
local id = ARGV[6]
check_alive(id)
local nk = nkey(id)
local n = redis.call('LLEN', nk)
local is_pop = ARGV[9] == 'pop'
if n == 0 and is_pop then fail('RM_INDEX pop from empty list') end
local i = n - 1
if ARGV[8] ~= '' then i = normalise_index(tonumber(ARGV[8]), n) end
if not i then
  if is_pop then fail('RM_INDEX pop index out of range') end
  fail('RM_INDEX list assignment index out of range')
end
local value = remove_at(nk, i, n)
local out = {value}
local kind, child = ref_of(value)
if kind and ARGV[10] == '1' then dump_into(out, kind, child) end
drop(value)
changed()
return out
