-- Function flags: no-writes
-- Return {field, value} for the first of the aliases ARGV[3..] present, else nil.
local id = ARGV[2]
local nk = nkey(id)
for a = 3, #ARGV do
  local v = redis.call('HGET', nk, ARGV[a])
  if v then return {ARGV[a], v} end
end
check_alive(id)
return false
