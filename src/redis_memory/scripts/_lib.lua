-- Shared prelude of every redis-memory script; store.py prepends it to each one.
--
-- Calling convention (KEYS[1] is the namespace's meta key, so Redis Cluster
-- routes the call to the namespace's slot; every other key shares its hash tag):
--   writes: ARGV[1] key prefix, [2] origin id, [3] top-level field (JSON text,
--           '' when the node is the namespace itself), [4] path (JSON string),
--           [5] time in ms, [6] node id, [7] operation name; arguments from [8].
--   reads:  ARGV[1] key prefix, [2] node id; arguments from [3].
-- Errors start with a code that store.py maps to a Python exception:
--   RM_STALE (node deleted), RM_INDEX <message>, RM_VALUE <message>, RM_IDCOLLISION.

local P = ARGV[1]
local META = P .. 'meta'
-- Never a stored entry, because entries are JSON text and JSON cannot start with a NUL byte.
local MARK = '\0rm-mark'
local CHUNK = 1000
-- A dict other than the root whose insertion order fits in INLINE_BYTES keeps
-- it in its own hash, as the value of the field ORDER: NUL, then each field
-- followed by NUL. JSON text contains no NUL, so ORDER is no key's field and
-- the separator is in no field. This spares a small dict the order LIST (see
-- read_order), which took 112 bytes per dict of three keys (MEMORY USAGE,
-- Valkey 8.1). An order that outgrows the limit moves to the LIST until the
-- dict is emptied.
-- 64 is the default hash-max-listpack-value, up to which a hash stays compact.
local ORDER = '\0order'
local INLINE_BYTES = 64
-- Set when drop() deletes a subtree, so a script can tell the client that
-- nested nodes went (the client's read cache then drops more).
local DROPPED = {any = false}

local function nkey(id) return P .. 'n:' .. id end
local function okey(id) return P .. 'o:' .. id end

-- A plain string error, because fakeredis drops the text of an error table.
local function fail(message) error(message) end

-- Return kind and id when the entry references a child node, else nil.
local function ref_of(v)
  if not v or string.byte(v, 1) ~= 123 then return nil end
  local kind, id = string.match(v, '^{"%$(%a+)":"(%x+)"}$')
  if kind == 'list' or kind == 'dict' then return kind, id end
  return nil
end

local function kind_of(id)
  if id == 'root' then return 'dict' end
  local kind = redis.call('HGET', META, id)
  if not kind then fail('RM_STALE') end
  return kind
end

local function check_alive(id)
  if id ~= 'root' and redis.call('HEXISTS', META, id) == 0 then fail('RM_STALE') end
end

-- Return the reply of the last push (the list's new length), or nil when first > last.
local function push_chunks(command, key, values, first, last)
  local length = nil
  for s = first, last, CHUNK do
    length = redis.call(command, key, unpack(values, s, math.min(s + CHUNK - 1, last)))
  end
  return length
end

-- A dict node's insertion order is a LIST of its fields, oldest first. A
-- delete leaves the field in the list as a stale entry, so it costs O(1).
-- A field counts at its last place in the list, and only while the hash contains it.
-- Version 0.1 kept the order in a ZSET, which read_order() reads and
-- order_call() converts to a LIST before writing.

-- Return the inline order of dict node id, or false when it has none.
local function inline_order(id)
  if id == 'root' then return false end
  return redis.call('HGET', nkey(id), ORDER)
end

-- Return the fields listed in an inline order.
local function split_order(text)
  local fields = {}
  local start = 2
  while true do
    local stop = string.find(text, '\0', start, true)
    if not stop then return fields end
    fields[#fields + 1] = string.sub(text, start, stop - 1)
    start = stop + 1
  end
end

local function read_order(id)
  local ok = okey(id)
  local reply = redis.pcall('LRANGE', ok, 0, -1)
  if type(reply) == 'table' and reply.err then
    if redis.call('TYPE', ok).ok ~= 'zset' then error(reply.err) end
    return redis.call('ZRANGE', ok, 0, -1)
  end
  return reply
end

local function order_call(command, id, ...)
  local ok = okey(id)
  local reply = redis.pcall(command, ok, ...)
  if type(reply) == 'table' and reply.err then
    if redis.call('TYPE', ok).ok ~= 'zset' then error(reply.err) end
    local fields = redis.call('ZRANGE', ok, 0, -1)
    redis.call('UNLINK', ok)
    push_chunks('RPUSH', ok, fields, 1, #fields)
    reply = redis.call(command, ok, ...)
  end
  return reply
end

-- Return the fields of dict node id in insertion order, each once, and
-- whether stale entries may be among them. An order as long as the hash has
-- no stale entry, so it is returned as it is.
local function unique_fields(id)
  local text = inline_order(id)
  if text then return split_order(text), false end
  local fields = read_order(id)
  local n = #fields
  if n == redis.call('HLEN', nkey(id)) then return fields, false end
  local seen = {}
  local kept = {}
  for j = n, 1, -1 do
    local f = fields[j]
    if not seen[f] then
      seen[f] = true
      kept[#kept + 1] = f
    end
  end
  local m = #kept
  local ordered = {}
  for j = 1, m do ordered[j] = kept[m - j + 1] end
  return ordered, true
end

-- Return {field1, value1, field2, value2, ...} of a dict node in insertion order.
-- Stale entries are skipped. Without stale entries, a field missing from the
-- hash means broken data, so its false value stays for dump_into() to report.
local function dict_pairs(id)
  local fields, stale = unique_fields(id)
  local out = {}
  local size = 0
  for s = 1, #fields, CHUNK do
    local e = math.min(s + CHUNK - 1, #fields)
    local values = redis.call('HMGET', nkey(id), unpack(fields, s, e))
    for j = s, e do
      local v = values[j - s + 1]
      if v or not stale then
        out[size + 1] = fields[j]
        out[size + 2] = v
        size = size + 2
      end
    end
  end
  return out
end

-- Tidy the order after keys of a dict node were deleted. An empty dict loses
-- its order, and an order with more than twice as many entries as keys, plus
-- 16, is rewritten, so a delete costs O(1) amortised.
local function tidy_order(id)
  local ok = okey(id)
  local live = redis.call('HLEN', nkey(id))
  if live == 0 then
    redis.call('UNLINK', ok)
    return
  end
  if order_call('LLEN', id) <= 2 * live + 16 then return end
  local entries = dict_pairs(id)
  local fields = {}
  for j = 1, #entries, 2 do fields[#fields + 1] = entries[j] end
  redis.call('UNLINK', ok)
  push_chunks('RPUSH', ok, fields, 1, #fields)
end

-- Add fields just set in the hash of dict node id to the end of its order.
-- A dict whose hash contains only them was empty, so it starts an inline order.
local function append_order(id, fields)
  if #fields == 0 then return end
  local nk = nkey(id)
  local text = inline_order(id)
  local stored = text
  if not text and id ~= 'root' and redis.call('HLEN', nk) == #fields then
    redis.call('UNLINK', okey(id))
    text = '\0'
  end
  if not text then
    for s = 1, #fields, CHUNK do
      order_call('RPUSH', id, unpack(fields, s, math.min(s + CHUNK - 1, #fields)))
    end
    return
  end
  local size = #text
  for j = 1, #fields do size = size + #fields[j] + 1 end
  if size <= INLINE_BYTES then
    redis.call('HSET', nk, ORDER, text .. table.concat(fields, '\0') .. '\0')
    return
  end
  local moved = split_order(text)
  for j = 1, #fields do moved[#moved + 1] = fields[j] end
  if stored then redis.call('HDEL', nk, ORDER) end
  push_chunks('RPUSH', okey(id), moved, 1, #moved)
end

-- Remove a field just deleted from the hash of dict node id from its order.
local function remove_order(id, field)
  local text = inline_order(id)
  if not text then
    tidy_order(id)
    return
  end
  local at = string.find(text, '\0' .. field .. '\0', 1, true)
  if not at then return end
  text = string.sub(text, 1, at) .. string.sub(text, at + #field + 2)
  if text == '\0' then
    redis.call('HDEL', nkey(id), ORDER)
  else
    redis.call('HSET', nkey(id), ORDER, text)
  end
end

local function entries_of(kind, id)
  if kind == 'list' then return redis.call('LRANGE', nkey(id), 0, -1) end
  return dict_pairs(id)
end

-- Append the subtree under a node to out as: id, kind, {entries} (dict
-- entries are field, value pairs), for the node and then each descendant.
-- The entries stay one nested array, which spares a copy of each of them.
-- Every node has one parent, so a node reached twice means foreign data made a
-- cycle; it is reported instead of looping for ever.
local function dump_into(out, kind, id)
  -- A counter, because #out searches for the length on every append.
  local size = #out
  local stack = {kind, id}
  local seen = {}
  while #stack > 0 do
    local nid = table.remove(stack)
    local k = table.remove(stack)
    if seen[nid] then fail('RM_CORRUPT node ' .. nid .. ' is referenced twice') end
    seen[nid] = true
    local entries = entries_of(k, nid)
    local n = #entries
    if n == 0 and nid ~= 'root' and redis.call('HEXISTS', META, nid) == 0 then
      fail('RM_CORRUPT an entry references node ' .. nid .. ', a node that does not exist')
    end
    out[size + 1] = nid
    out[size + 2] = k
    out[size + 3] = entries
    size = size + 3
    -- A reference starts with {"$, which no JSON string's text contains because
    -- it escapes quotes, so one search of the joined entries spares most nodes
    -- a call per entry. That took the server time of a dump of 100,000 scalars
    -- from 20.6 to 16.7 ms (INFO commandstats, Valkey 8.1).
    -- table.concat fails on an entry that is not text: HMGET's false for a
    -- field of the order that the hash lacks, in data broken by foreign writes.
    local joined_ok, joined = pcall(table.concat, entries, ',')
    if not joined_ok then
      fail('RM_CORRUPT node ' .. nid .. ' has an order entry without a value')
    end
    if string.find(joined, '{"$', 1, true) then
      local first = (k == 'dict') and 2 or 1
      local step = (k == 'dict') and 2 or 1
      for j = first, n, step do
        local ck, cid = ref_of(entries[j])
        if ck then
          stack[#stack + 1] = ck
          stack[#stack + 1] = cid
        end
      end
    end
  end
end

-- Delete the subtree an entry references; a scalar entry needs nothing. A
-- node reached twice (a cycle in foreign data) is deleted once.
local function drop(v)
  local kind, id = ref_of(v)
  if not kind then return end
  DROPPED.any = true
  local stack = {kind, id}
  local seen = {}
  while #stack > 0 do
    local nid = table.remove(stack)
    local k = table.remove(stack)
    if not seen[nid] then
      seen[nid] = true
      -- Checking the type lets a value that foreign data broke be replaced or deleted.
      local actual = redis.call('TYPE', nkey(nid)).ok
      local values = {}
      if actual == 'list' then
        values = redis.call('LRANGE', nkey(nid), 0, -1)
      elseif actual == 'hash' then
        values = redis.call('HVALS', nkey(nid))
      end
      for j = 1, #values do
        local ck, cid = ref_of(values[j])
        if ck then
          stack[#stack + 1] = ck
          stack[#stack + 1] = cid
        end
      end
      redis.call('UNLINK', nkey(nid))
      if k == 'dict' then redis.call('UNLINK', okey(nid)) end
      redis.call('HDEL', META, nid)
    end
  end
end

-- Check the node specs that start at ARGV[i] (count, then per node: id, kind,
-- n, n entries) before anything is written; return the index after them.
local function check_nodes(i)
  local count = tonumber(ARGV[i])
  local j = i + 1
  for _ = 1, count do
    if redis.call('HEXISTS', META, ARGV[j]) == 1 then fail('RM_IDCOLLISION') end
    j = j + 3 + tonumber(ARGV[j + 2])
  end
  return j
end

-- Create the nodes that check_nodes(i) checked.
local function create_nodes(i)
  local count = tonumber(ARGV[i])
  local j = i + 1
  for _ = 1, count do
    local id, kind, n = ARGV[j], ARGV[j + 1], tonumber(ARGV[j + 2])
    local first, last = j + 3, j + 2 + n
    redis.call('HSET', META, id, kind)
    if kind == 'list' then
      push_chunks('RPUSH', nkey(id), ARGV, first, last)
    else
      local order = {}
      for s = first, last, CHUNK do
        redis.call('HSET', nkey(id), unpack(ARGV, s, math.min(s + CHUNK - 1, last)))
      end
      for f = first, last, 2 do order[#order + 1] = ARGV[f] end
      append_order(id, order)
    end
    j = last + 1
  end
end

local function touch(field)
  redis.call('HSET', P .. 'mtime', field, ARGV[5])
end

local function untouch(field)
  redis.call('HDEL', P .. 'mtime', field)
end

-- Bump the version and publish one change message; return the new version.
local function changed()
  local version = redis.call('INCR', P .. 'ver')
  if ARGV[6] ~= 'root' and ARGV[3] ~= '' then touch(ARGV[3]) end
  local name = ARGV[3]
  if name == '' then name = 'null' end
  redis.call('PUBLISH', P .. 'feed', '{"v":' .. version .. ',"o":"' .. ARGV[2]
    .. '","id":"' .. ARGV[6] .. '","op":"' .. ARGV[7] .. '","n":' .. name
    .. ',"p":' .. ARGV[4] .. '}')
  return version
end

-- Python's slice.indices semantics; nil start or stop means omitted.
local function slice_indices(n, start, stop, step)
  local lower, upper = 0, n
  if step < 0 then lower, upper = -1, n - 1 end
  local function adjust(x, default)
    if x == nil then return default end
    if x < 0 then
      x = x + n
      if x < lower then x = lower end
    elseif x > upper then
      x = upper
    end
    return x
  end
  start = adjust(start, step < 0 and upper or lower)
  stop = adjust(stop, step < 0 and lower or upper)
  local count = 0
  if step < 0 then
    if stop < start then count = math.floor((start - stop - 1) / -step) + 1 end
  elseif start < stop then
    count = math.floor((stop - start - 1) / step) + 1
  end
  return start, stop, step, count
end

local function optional_number(s)
  if s == '' then return nil end
  return tonumber(s)
end

-- Normalise a Python index against length n; nil when out of range.
local function normalise_index(i, n)
  if i < 0 then i = i + n end
  if i < 0 or i >= n then return nil end
  return i
end

-- Remove the entry at index i of a LIST in O(min(i, n - i)); return it.
local function remove_at(key, i, n)
  if i == n - 1 then return redis.call('RPOP', key) end
  if i == 0 then return redis.call('LPOP', key) end
  local v = redis.call('LINDEX', key, i)
  redis.call('LSET', key, i, MARK)
  if i <= n / 2 then
    redis.call('LREM', key, 1, MARK)
  else
    redis.call('LREM', key, -1, MARK)
  end
  return v
end
