-- Function flags: no-writes
-- Return the entries of a node (dict: field, value pairs in insertion order).
local id = ARGV[2]
return entries_of(kind_of(id), id)
