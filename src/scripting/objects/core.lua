-- Helpers for object types, with the original config.lua's names (reference 5.7).
-- An object is a Lua table kept, marshalled, in an ordinary store item under
-- storageKey(typeName, objectKey) = "\1" .. typeName .. "$" .. objectKey.
-- Memcached keys cannot hold control characters, so no client key can read,
-- overwrite or collide with an object; scripts reach them through this key.
local host = ...
local hostGet, hostSet, replyString = host.get, host.set, host.replyString
local marshal, unmarshal = table.marshal, table.unmarshal
local type, error = type, error

function storageKey(typeName, objectKey)
  return "\1" .. typeName .. "$" .. objectKey
end

-- Raises "missing argument: <name>" (the reply becomes SERVER_ERROR) when a
-- virtual key has too few segments.
function needArgument(value, name)
  if value == nil then error("missing argument: " .. name, 0) end
  return value
end

-- Appends `VALUE <key> 0 <len>\r\n<value>\r\n`; numbers print as %.14g.
function writeStringAsValue(cmd, key, value)
  value = replyString(value)
  return cmd:writeString("VALUE " .. key .. " 0 " .. #value .. "\r\n" .. value .. "\r\n")
end

-- The object as a table, or nil when it is not stored.
function loadObject(typeName, objectKey)
  local data = hostGet(storageKey(typeName, objectKey))
  if data == nil then return nil end
  return unmarshal(data)
end

-- Objects never expire; they leave only through the store's LRU.
function storeObject(typeName, objectKey, obj)
  if not hostSet(storageKey(typeName, objectKey), marshal(obj), 0, 0) then
    error("out of memory storing object", 0)
  end
end

-- fn(obj, ...) computes the reply; the object is not written back.
function executeReadOnly(cmd, key, typeName, objectKey, fn, ...)
  needArgument(objectKey, "object key")
  local data = hostGet(storageKey(typeName, objectKey))
  if data == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  return writeStringAsValue(cmd, key, fn(unmarshal(data), ...))
end

-- fn(obj, ...) may change the object; it is stored again only if it changed.
function executeReadWrite(cmd, key, typeName, objectKey, fn, ...)
  needArgument(objectKey, "object key")
  local skey = storageKey(typeName, objectKey)
  local data = hostGet(skey)
  if data == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  local obj = unmarshal(data)
  local result = fn(obj, ...)
  local newData = marshal(obj)
  if newData ~= data and not hostSet(skey, newData, 0, 0) then
    error("out of memory storing object", 0)
  end
  return writeStringAsValue(cmd, key, result)
end

-- obj = fn(...) replaces any stored object (CREATED); nil leaves the stored
-- object alone (NOT_CREATED).
function executeNew(cmd, key, typeName, objectKey, fn, ...)
  needArgument(objectKey, "object key")
  local obj = fn(...)
  if type(obj) ~= "table" then return writeStringAsValue(cmd, key, "NOT_CREATED") end
  storeObject(typeName, objectKey, obj)
  return writeStringAsValue(cmd, key, "CREATED")
end
