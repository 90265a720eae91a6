-- The original's script API (reference 5.1-5.4) over the host's store:
-- getHashMap(), CacheItem, the per-request Command, setLogLevel, and print.
-- Publishes host.newCommand and host.takeReply for dispatch.lua, and
-- host.Command for cluster.lua.
local host = ...
local type, tostring, setmetatable, getmetatable, error, select =
  type, tostring, setmetatable, getmetatable, error, select
local running = coroutine.running
local concat, format, mathType, find = table.concat, string.format, math.type, string.find
local hostGet, hostSet, hostDelete, hostKeys, hostEvict, hostLog =
  host.get, host.set, host.delete, host.keys, host.evict, host.log

local function expect(value, luaType, what)
  if type(value) ~= luaType then
    error(what .. " must be a " .. luaType .. ", got " .. type(value), 3)
  end
  return value
end

-- The method tables below are shared by every script, and read-only to them:
-- no script can reach one. An object's metatable is hidden by __metatable
-- (getmetatable answers the type's name), and its __index is a method table
-- that has no __index field, so `obj.__index` is nil. A script may set fields
-- on an object it holds, which changes that object only.

-- CacheItem: a snapshot of one stored item (or one about to be stored).
-- References are garbage collected, so delete() has nothing to release.
local CacheItem = {}
local CacheItemMeta = { __index = CacheItem, __metatable = "CacheItem" }

local function newCacheItem(key, data, flags, exptime)
  return setmetatable({ key = key, data = data, flags = flags, exptime = exptime }, CacheItemMeta)
end

function CacheItem:getKey() return self.key end
function CacheItem:getKeySize() return #self.key end
function CacheItem:getExpiryTime() return self.exptime end
function CacheItem:getFlags() return self.flags end
function CacheItem:getDataSize() return #self.data end
function CacheItem:getData() return self.data end
function CacheItem:delete() end

-- HashMap: the one global item map. Each call gives a handle of its own, so
-- that a field a script sets on its handle is seen by no other script.
local HashMap = {}
local HashMapMeta = { __index = HashMap, __metatable = "HashMap" }

function getHashMap() return setmetatable({}, HashMapMeta) end

-- An object is also found under the name the original gave it,
-- "<type>$<objectKey>" (its storage key without the leading "\1"), so that
-- the original's scripts, which read objects that way, see the objects
-- executeNew stores. An item stored under that very name wins.
function HashMap:get(key)
  expect(key, "string", "key")
  local data, flags, exptime = hostGet(key)
  if data == nil and find(key, "$", 2, true) then data, flags, exptime = hostGet("\1" .. key) end
  if data == nil then return nil end
  return newCacheItem(key, data, flags, exptime)
end

-- Returns false when the store has no memory for the item.
function HashMap:put(item)
  if getmetatable(item) ~= "CacheItem" then error("put expects a CacheItem", 2) end
  return hostSet(item.key, item.data, item.flags, item.exptime) ~= false
end

function HashMap:delete(key) return hostDelete(expect(key, "string", "key")) end
function HashMap:deleteLRU(bytes) return hostEvict(expect(bytes, "number", "bytes")) end

-- An array of keys (any order), or nil when nothing matches.
function HashMap:getPrefixMatchingKeys(prefix)
  return hostKeys(expect(prefix, "string", "prefix"))
end

-- Command: the current `get` of one virtual key. Writes are collected and
-- become the reply block for that key. `thread` is the coroutine the request
-- runs in (the only one that may wait on other servers); `atomic` counts the
-- object updates in progress, during which it may not (core.lua).
-- host.Command lets cluster.lua add its methods before any script runs.
local Command = { flags = 0, exptime = 0, delta = 0, noreply = 0, atomic = 0 }
local CommandMeta = { __index = Command, __metatable = "Command" }
host.Command = Command

function host.newCommand(key)
  return setmetatable({ key = key, thread = running() }, CommandMeta)
end

function Command:getCommand() return "get" end
function Command:getKey() return self.key end
function Command:getKeySize() return #self.key end
function Command:setKey(s)
  if expect(s, "string", "key") ~= "" then self.key = s end
end
function Command:getData() return self.data end
function Command:getDataSize() return self.data and #self.data or 0 end
function Command:setData(s)
  if expect(s, "string", "data") ~= "" then self.data = s end
end
function Command:getFlags() return self.flags end
function Command:setFlags(n) self.flags = expect(n, "number", "flags") end
function Command:getExpiryTime() return self.exptime end
function Command:setExpiryTime(n) self.exptime = expect(n, "number", "expiry time") end
function Command:getDelta() return self.delta end
function Command:setDelta(n) self.delta = expect(n, "number", "delta") end
function Command:getNoReply() return self.noreply end
function Command:setNoReply(n) self.noreply = expect(n, "number", "noreply") end
-- Each virtual key of a multi-get is handled on its own.
function Command:hasMultipleKeys() return 0 end
function Command:getMultipleKeys() return nil end

function Command:newCacheItem()
  return newCacheItem(self.key, self.data or "", self.flags, self.exptime)
end

-- Appends raw bytes to the reply; "" writes nothing and returns -1.
function Command:writeString(s)
  expect(s, "string", "reply")
  if s == "" then return -1 end
  local out = self.output
  if out == nil then
    self.output = s
  elseif type(out) == "string" then
    self.output = { out, s }
  else
    out[#out + 1] = s
  end
  return 0
end

function Command:writeCacheItem(item)
  if getmetatable(item) ~= "CacheItem" then error("writeCacheItem expects a CacheItem", 2) end
  return self:writeString(format("VALUE %s %d %d\r\n", item.key, item.flags, #item.data) .. item.data .. "\r\n")
end

-- Numbers as Lua 5.1 printed them (%.14g): 75, 28.5, 0.1875.
local function replyString(v)
  if type(v) == "number" then
    if mathType(v) == "integer" and v > -1e14 and v < 1e14 then return tostring(v) end
    return format("%.14g", v)
  end
  if v == nil then return "" end
  return tostring(v)
end
host.replyString = replyString

-- The reply block of a finished handler: what it wrote (a string, or a table
-- of the pieces it wrote, which the host joins into the reply in one copy),
-- or else its return value as a VALUE block for the virtual key, or else nothing.
function host.takeReply(cmd, virtualKey, result)
  local out = cmd.output
  if out == nil then
    if result == nil then return "" end
    local value = replyString(result)
    return "VALUE " .. virtualKey .. " 0 " .. #value .. "\r\n" .. value .. "\r\n"
  end
  return out
end

-- print() writes at info level (1); it is dropped when the level is set above
-- that (0 debug, 1 info, 2 warn, 3 error).
local logLevel = 0

function setLogLevel(n)
  if type(n) == "number" and n >= 0 and n <= 3 then logLevel = n end
end

function print(...)
  if logLevel > 1 then return end
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  hostLog(1, concat(parts, "\t"))
end
