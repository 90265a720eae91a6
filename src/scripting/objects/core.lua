-- Helpers for object types, with the original config.lua's names (reference 5.7).
-- They are globals for scripts, but call each other through locals so that a
-- script replacing a global cannot change how the bundled types work.
-- An object is a Lua table kept, marshalled, in an ordinary store item under
-- storageKey(typeName, objectKey) = "\1" .. typeName .. "$" .. objectKey.
-- Script keys live in the store's objects namespace, which no client key
-- reaches whatever its bytes; scripts reach objects through this key.
local host = ...
local hostGet, hostSet, replyString = host.get, host.set, host.replyString
local marshal, unmarshal = table.marshal, table.unmarshal
local type, error = type, error

local function storageKey(typeName, objectKey)
  return "\1" .. typeName .. "$" .. objectKey
end

-- Raises "missing argument: <name>" (the reply becomes SERVER_ERROR) when a
-- virtual key has too few segments.
local function needArgument(value, name)
  if value == nil then error("missing argument: " .. name, 0) end
  return value
end

-- The finite number a decimal argument spells ("12", "-0.5", "1e3"), or nil:
-- tonumber alone would also take hexadecimal ("0x10") and overflow to
-- infinity ("1e999"), which no object should store.
local find, tonumber, huge = string.find, tonumber, math.huge
function host.finiteDecimal(s)
  if type(s) ~= "string" or find(s, "^[%d.eE+-]+$") == nil then return nil end
  local n = tonumber(s)
  if n == nil or n ~= n or n == huge or n == -huge then return nil end
  return n
end

-- Appends `VALUE <key> 0 <len>\r\n<value>\r\n`; numbers print as %.14g.
-- A large value is written as a piece of its own, so that it is copied once
-- into the reply instead of being joined to its header in Lua first.
local PIECE_BYTES = 4096
local function writeStringAsValue(cmd, key, value)
  value = replyString(value)
  if #value < PIECE_BYTES then
    return cmd:writeString("VALUE " .. key .. " 0 " .. #value .. "\r\n" .. value .. "\r\n")
  end
  cmd:writeString("VALUE " .. key .. " 0 " .. #value .. "\r\n")
  cmd:writeString(value)
  return cmd:writeString("\r\n")
end

-- For the bundled listings: `lines[1..n]`, each followed by CRLF, as the
-- value (the lines are joined once, and their last CRLF rides with the
-- block's own).
local concat = table.concat
function host.writeLinesAsValue(cmd, key, lines, n)
  if n == 0 then return writeStringAsValue(cmd, key, "") end
  local body = concat(lines, "\r\n", 1, n)
  cmd:writeString("VALUE " .. key .. " 0 " .. (#body + 2) .. "\r\n")
  cmd:writeString(body)
  return cmd:writeString("\r\n\r\n")
end

-- An object item holds a marshalled table followed by the changes made since
-- (marshal.lua's log records: a later pair replaces a key, a nil value
-- removes it), so that a change costs its own size, not the object's: it is
-- appended in place (src/store/object-log.ts) while the item has room, into a
-- copy half again as large when not. When the log holds more dead pairs than
-- live ones it is compacted: the object is marshalled and stored afresh.
--
-- Decoded objects are cached by storage key, each with the item's version
-- and the log length it was decoded up to. The version stays while changes
-- are only appended and changes on every other write (eviction, delete, a
-- compaction, another script's put), so a call reads only what other
-- threads appended since (often nothing) and decodes the whole object only
-- when it was replaced. Entry: obj, version, length, count (keys of obj),
-- records (pairs in the log).
-- The cache is for hot objects only: it holds at most DECODED_CACHE_ENTRIES
-- objects and host.DECODED_CACHE_BYTES of log bytes (a share of the Lua
-- heap), and starts over empty when either is reached. That is cheaper than
-- tracking recency, a hot object is back after one call, and the few live
-- tables add little to the collector's work. An entry is out of the cache
-- while in use.
local DECODED_CACHE_ENTRIES = 256
local DECODED_CACHE_BYTES = host.DECODED_CACHE_BYTES
-- Dead pairs tolerated beyond the live ones before a compaction.
local COMPACT_SLACK = 8
local decoded, decodedCount, decodedBytes = {}, 0, 0
local readLog, appendLog, storeLog = host.readLog, host.appendLog, host.storeLog
local decodeInto, encodeChanges = host.decodeInto, host.encodeChanges
local select, next = select, next

local function cacheDecoded(skey, entry)
  local size = entry.length
  if size > DECODED_CACHE_BYTES then return end
  if decodedCount >= DECODED_CACHE_ENTRIES or decodedBytes + size > DECODED_CACHE_BYTES then
    decoded, decodedCount, decodedBytes = {}, 0, 0
  end
  decoded[skey] = entry
  decodedCount = decodedCount + 1
  decodedBytes = decodedBytes + size
end

-- The entry for the object stored under skey, up to date with the store and
-- taken out of the cache (whoever holds it may change the object, and puts it
-- back once the store has the change), or nil when no object is stored.
local function takeDecoded(skey)
  local entry = decoded[skey]
  local version, length = -1, 0
  if entry ~= nil then
    decoded[skey] = nil
    decodedCount = decodedCount - 1
    decodedBytes = decodedBytes - entry.length
    version, length = entry.version, entry.length
  end
  local newVersion, newLength, from, bytes = readLog(skey, version, length)
  if from == nil then return newVersion and entry end
  if from == 0 then
    local obj = {}
    local records, count = decodeInto(obj, bytes, 2)
    return { obj = obj, version = newVersion, length = newLength, count = count, records = records }
  end
  local records, gained = decodeInto(entry.obj, bytes, 1)
  entry.records = entry.records + records
  entry.count = entry.count + gained
  entry.length = newLength
  return entry
end

local function countKeys(obj)
  local n = 0
  for _ in next, obj do n = n + 1 end
  return n
end

-- Stores the whole object afresh: a compacted log with room to grow, or
-- without room for an object that is always stored whole (executeReadWrite).
local function storeWhole(skey, entry, withRoom)
  local data = marshal(entry.obj)
  local version, length
  if withRoom then
    version, length = storeLog(skey, data)
  else
    version, length = hostSet(skey, data, 0, 0), #data
  end
  if not version then error("out of memory storing object", 0) end
  entry.version, entry.length, entry.records = version, length, entry.count
end

-- Applies the (key, value) pairs an update returned to the object, then
-- appends them to its log (or compacts the log when it is mostly dead).
local function storeChanges(skey, entry, ...)
  local obj, count = entry.obj, entry.count
  local n = select("#", ...)
  for i = 1, n, 2 do
    local k, v = select(i, ...)
    if obj[k] == nil then
      if v ~= nil then count = count + 1 end
    elseif v == nil then
      count = count - 1
    end
    obj[k] = v
  end
  entry.count = count
  entry.records = entry.records + (n + 1) // 2
  if entry.records - count > count + COMPACT_SLACK then return storeWhole(skey, entry, true) end
  local record = encodeChanges(obj, ...)
  local version, length
  if record ~= nil then version, length = appendLog(skey, entry.version, entry.length, record) end
  -- nil: the item changed under this call (evicted meanwhile) or the record
  -- cannot stand alone; the whole object is stored, as a rewrite always was.
  if version == nil then return storeWhole(skey, entry, true) end
  if not version then error("out of memory storing object", 0) end
  entry.version, entry.length = version, length
end

-- The object as a table of its own, or nil when it is not stored.
local function loadObject(typeName, objectKey)
  local data = hostGet(storageKey(typeName, objectKey))
  if data == nil then return nil end
  return unmarshal(data)
end

-- Objects never expire; they leave only through the store's LRU.
local function storeObject(typeName, objectKey, obj)
  if not storeLog(storageKey(typeName, objectKey), marshal(obj)) then
    error("out of memory storing object", 0)
  end
end

-- The functions given to the helpers below run atomically: nothing else runs
-- between reading the object and storing it, because they cannot wait on
-- other servers (cmd.atomic > 0 makes getFromServer/getInParallel raise an
-- error). A handler that needs remote data fetches it first, then updates.

-- The object's storage key and its decoded entry; the entry is nil when no
-- such object is stored (answer missing(cmd, key)).
local function takeObject(typeName, objectKey)
  needArgument(objectKey, "object key")
  local skey = storageKey(typeName, objectKey)
  return skey, takeDecoded(skey)
end

local function missing(cmd, key)
  return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS")
end

local function restoreAtomic(cmd, atomic, ...)
  cmd.atomic = atomic
  return ...
end

-- fn(...) with cmd.atomic raised (see above); returns what fn returns.
local function atomically(cmd, fn, ...)
  local atomic = cmd.atomic
  cmd.atomic = atomic + 1
  return restoreAtomic(cmd, atomic, fn(...))
end

-- fn(obj, ...) computes the reply; changes to obj are not stored.
local function executeReadOnly(cmd, key, typeName, objectKey, fn, ...)
  local _, entry = takeObject(typeName, objectKey)
  if entry == nil then return missing(cmd, key) end
  local result = atomically(cmd, fn, entry.obj, ...)
  return writeStringAsValue(cmd, key, result)
end

-- fn(obj, ...) may change the object, which is then stored whole. fn may
-- return false after the reply to say it changed nothing, which skips
-- storing. The object stays cached for the next call, so fn must not keep it.
local function executeReadWrite(cmd, key, typeName, objectKey, fn, ...)
  local skey, entry = takeObject(typeName, objectKey)
  if entry == nil then return missing(cmd, key) end
  local result, changed = atomically(cmd, fn, entry.obj, ...)
  if changed ~= false then
    entry.count = countKeys(entry.obj)
    storeWhole(skey, entry, false)
  end
  cacheDecoded(skey, entry)
  return writeStringAsValue(cmd, key, result)
end

local function finishUpdate(cmd, key, skey, entry, result, ...)
  if select("#", ...) > 0 then storeChanges(skey, entry, ...) end
  cacheDecoded(skey, entry)
  return writeStringAsValue(cmd, key, result)
end

-- Updates in time proportional to the change: fn(obj, ...) returns the reply,
-- then a key and its new value for each top-level field to change (nil
-- removes it): `return "SUCCESS", element, 1`. Only those pairs are applied
-- and appended to the stored object; nothing after the reply stores nothing.
-- fn may change a nested table in place if it returns its field. The object
-- stays cached for the next call, so fn must not keep it.
local function executeUpdate(cmd, key, typeName, objectKey, fn, ...)
  local skey, entry = takeObject(typeName, objectKey)
  if entry == nil then return missing(cmd, key) end
  return finishUpdate(cmd, key, skey, entry, atomically(cmd, fn, entry.obj, ...))
end

-- The number of top-level keys of the object (the members of a set, the
-- fields of a map), kept up to date without walking it.
local function executeCount(cmd, key, typeName, objectKey)
  local skey, entry = takeObject(typeName, objectKey)
  if entry == nil then return missing(cmd, key) end
  cacheDecoded(skey, entry)
  return writeStringAsValue(cmd, key, entry.count)
end

-- obj = fn(...) replaces any stored object (CREATED); nil leaves the stored
-- object alone (NOT_CREATED).
local function executeNew(cmd, key, typeName, objectKey, fn, ...)
  needArgument(objectKey, "object key")
  local obj = atomically(cmd, fn, ...)
  if type(obj) ~= "table" then return writeStringAsValue(cmd, key, "NOT_CREATED") end
  storeObject(typeName, objectKey, obj)
  return writeStringAsValue(cmd, key, "CREATED")
end

-- For the bundled types only (their read methods never change the object):
-- the same as executeReadOnly and loadObject, but the decoded object stays
-- cached and is shared with later calls.
function host.executeShared(cmd, key, typeName, objectKey, fn, ...)
  local skey, entry = takeObject(typeName, objectKey)
  if entry == nil then return missing(cmd, key) end
  local result = fn(entry.obj, ...)
  cacheDecoded(skey, entry)
  return writeStringAsValue(cmd, key, result)
end

function host.loadShared(typeName, objectKey)
  local skey = storageKey(typeName, objectKey)
  local entry = takeDecoded(skey)
  if entry == nil then return nil end
  cacheDecoded(skey, entry)
  return entry.obj
end

_G.storageKey, _G.needArgument, _G.writeStringAsValue = storageKey, needArgument, writeStringAsValue
_G.loadObject, _G.storeObject = loadObject, storeObject
_G.executeReadOnly, _G.executeReadWrite, _G.executeNew = executeReadOnly, executeReadWrite, executeNew
_G.executeUpdate, _G.executeCount = executeUpdate, executeCount
