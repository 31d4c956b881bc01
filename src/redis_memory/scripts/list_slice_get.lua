-- Function flags: no-writes
-- Return {count, entries..., subtree dumps...} for the slice ARGV[3]:ARGV[4]:ARGV[5]
-- ('' for an omitted start or stop; the step is never zero).
local id = ARGV[2]
local nk = nkey(id)
local n = redis.call('LLEN', nk)
if n == 0 then check_alive(id) end
local start, _, step, count = slice_indices(
  n, optional_number(ARGV[3]), optional_number(ARGV[4]), tonumber(ARGV[5]))
local out = {count}
if count == 0 then return out end
local last = start + (count - 1) * step
local lo = math.min(start, last)
local span = redis.call('LRANGE', nk, lo, math.max(start, last))
for j = 0, count - 1 do
  out[#out + 1] = span[start + j * step - lo + 1]
end
for j = 2, count + 1 do
  local kind, child = ref_of(out[j])
  if kind then dump_into(out, kind, child) end
end
return out
