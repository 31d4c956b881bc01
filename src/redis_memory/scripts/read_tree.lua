-- Function flags: no-writes
-- Return the dump of a node and every node below it (format: see dump_into).
local id = ARGV[2]
local out = {}
dump_into(out, kind_of(id), id)
return out
