-- Helpers for object types, with the original config.lua's names (reference 5.7).
-- They are globals for scripts, but call each other through locals so that a
-- script replacing a global cannot change how the bundled types work.
-- An object is a Lua table kept, marshalled, in an ordinary store item under
-- storageKey(typeName, objectKey) = "\1" .. typeName .. "$" .. objectKey.
-- Script keys live in the store's objects namespace, which no client key
-- reaches whatever its bytes; scripts reach objects through this key.
local host = ...
local hostGet, hostSet, hostVersion, replyString = host.get, host.set, host.version, host.replyString
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
local function writeStringAsValue(cmd, key, value)
  value = replyString(value)
  return cmd:writeString("VALUE " .. key .. " 0 " .. #value .. "\r\n" .. value .. "\r\n")
end

-- Decoded objects by storage key, each with the bytes it was decoded from and
-- the item's version (the store changes it on every write). An entry is used
-- only while the stored version is the same, so a change made elsewhere
-- (eviction, delete, another script) is never missed, and an unchanged object
-- is neither copied out of the store nor decoded again.
-- The cache is for hot objects only: it holds at most DECODED_CACHE_ENTRIES
-- objects and host.DECODED_CACHE_BYTES of encoded bytes (a small share of the
-- Lua heap), and starts over empty when either is reached. That is cheaper
-- than tracking recency, a hot object is back after one call, and the few
-- live tables add little to the collector's work. An entry is out of the
-- cache while in use.
local DECODED_CACHE_ENTRIES = 256
local DECODED_CACHE_BYTES = host.DECODED_CACHE_BYTES
local decoded, decodedCount, decodedBytes = {}, 0, 0

local function cacheDecoded(skey, entry)
  local size = #entry.data
  if size > DECODED_CACHE_BYTES then return end
  if decodedCount >= DECODED_CACHE_ENTRIES or decodedBytes + size > DECODED_CACHE_BYTES then
    decoded, decodedCount, decodedBytes = {}, 0, 0
  end
  decoded[skey] = entry
  decodedCount = decodedCount + 1
  decodedBytes = decodedBytes + size
end

-- The entry for the object stored under skey, taken out of the cache (whoever
-- holds it may change the object, and puts it back only if it matches the
-- store), or nil when no object is stored.
local function takeDecoded(skey)
  local version = hostVersion(skey)
  if version == nil then return nil end
  local entry = decoded[skey]
  if entry ~= nil then
    decoded[skey] = nil
    decodedCount = decodedCount - 1
    decodedBytes = decodedBytes - #entry.data
    if entry.version == version then return entry end
  end
  local data = hostGet(skey)
  return { data = data, version = version, obj = unmarshal(data) }
end

-- The object as a table of its own, or nil when it is not stored.
local function loadObject(typeName, objectKey)
  local data = hostGet(storageKey(typeName, objectKey))
  if data == nil then return nil end
  return unmarshal(data)
end

-- Objects never expire; they leave only through the store's LRU.
local function storeObject(typeName, objectKey, obj)
  if not hostSet(storageKey(typeName, objectKey), marshal(obj), 0, 0) then
    error("out of memory storing object", 0)
  end
end

-- The functions given to the helpers below run atomically: nothing else runs
-- between reading the object and storing it, because they cannot wait on
-- other servers (cmd.atomic > 0 makes getFromServer/getInParallel raise an
-- error). A handler that needs remote data fetches it first, then updates.

-- fn(obj, ...) computes the reply; changes to obj are not stored.
local function executeReadOnly(cmd, key, typeName, objectKey, fn, ...)
  needArgument(objectKey, "object key")
  local entry = takeDecoded(storageKey(typeName, objectKey))
  if entry == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  local atomic = cmd.atomic
  cmd.atomic = atomic + 1
  local result = fn(entry.obj, ...)
  cmd.atomic = atomic
  return writeStringAsValue(cmd, key, result)
end

-- fn(obj, ...) may change the object; it is stored again only if it changed.
-- fn may return false after the reply to say it changed nothing, which also
-- skips encoding the object. The object stays cached for the next call, so fn
-- must not keep it.
local function executeReadWrite(cmd, key, typeName, objectKey, fn, ...)
  needArgument(objectKey, "object key")
  local skey = storageKey(typeName, objectKey)
  local entry = takeDecoded(skey)
  if entry == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  local atomic = cmd.atomic
  cmd.atomic = atomic + 1
  local result, changed = fn(entry.obj, ...)
  cmd.atomic = atomic
  if changed ~= false then
    local newData = marshal(entry.obj)
    if newData ~= entry.data then
      local version = hostSet(skey, newData, 0, 0)
      if not version then error("out of memory storing object", 0) end
      entry.data, entry.version = newData, version
    end
  end
  cacheDecoded(skey, entry)
  return writeStringAsValue(cmd, key, result)
end

-- obj = fn(...) replaces any stored object (CREATED); nil leaves the stored
-- object alone (NOT_CREATED).
local function executeNew(cmd, key, typeName, objectKey, fn, ...)
  needArgument(objectKey, "object key")
  local atomic = cmd.atomic
  cmd.atomic = atomic + 1
  local obj = fn(...)
  cmd.atomic = atomic
  if type(obj) ~= "table" then return writeStringAsValue(cmd, key, "NOT_CREATED") end
  storeObject(typeName, objectKey, obj)
  return writeStringAsValue(cmd, key, "CREATED")
end

-- For the bundled types only (their read methods never change the object):
-- the same as executeReadOnly and loadObject, but the decoded object stays
-- cached and is shared with later calls.
function host.executeShared(cmd, key, typeName, objectKey, fn, ...)
  needArgument(objectKey, "object key")
  local skey = storageKey(typeName, objectKey)
  local entry = takeDecoded(skey)
  if entry == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
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
