-- The cluster primitives (reference 5.5): newConsistent rings, and
-- command:getFromServer / command:getInParallel, which wait for other servers
-- without blocking this one. A virtual-key handler runs in a coroutine of its
-- own; a wait yields (WAIT_TOKEN, request) to the host, which sends the `get`s,
-- serves other clients meanwhile, and resumes the coroutine with
-- (WAIT_TOKEN, values[, error]). Across a wait anything may change: other
-- requests run, so objects read before it must be read again after it.
local host = ...
local type, error, getmetatable, pairs, tostring = type, error, getmetatable, pairs, tostring
local find, concat, yield, running = string.find, table.concat, coroutine.yield, coroutine.running
local WAIT, CLUSTER_PEERS, CLUSTER_SERVERS, CLUSTER_SELF =
  host.WAIT_TOKEN, host.CLUSTER_PEERS, host.CLUSTER_SERVERS, host.CLUSTER_SELF
local ringNew, ringFind, ringCount, ringIsAvailable, ringSetAvailable, ringFree =
  host.ringNew, host.ringFind, host.ringCount, host.ringIsAvailable, host.ringSetAvailable, host.ringFree
local Command, setmetatable = host.Command, host.setmetatable

local MAX_KEY_BYTES = 250

-- Consistent: a ketama ring over "host:port" servers, hashed as --hash, so it
-- agrees with the server's own routing for the same list. Its methods are
-- out of reach of scripts, as api.lua's are; its finalizer (set with the
-- sandbox's raw setmetatable) only frees the ring in the host.
local Consistent = {}
local ConsistentMeta = {
  __index = Consistent,
  __metatable = "Consistent",
  __gc = function(ring)
    if ring.id ~= nil then ringFree(ring.id) end
  end,
}

local function ringId(ring)
  if getmetatable(ring) ~= "Consistent" then error("expected a ring from newConsistent", 3) end
  if ring.id == nil then error("the ring was deleted", 3) end
  return ring.id
end

-- newConsistent(list): list is "host:port[:weight]" entries separated by commas
-- or spaces, or a table of such strings; with no list, the --peers of this
-- cluster. Returns the ring, or nil and a message for a bad list.
function newConsistent(list)
  if list == nil then
    if CLUSTER_PEERS == "" then error("newConsistent: no server list given, and not in cluster mode", 2) end
    list = CLUSTER_PEERS
  elseif type(list) == "table" then
    for i = 1, #list do
      if type(list[i]) ~= "string" then error("newConsistent: server " .. i .. " is not a string", 2) end
    end
    list = concat(list, ",")
  elseif type(list) ~= "string" then
    error("newConsistent: list must be a string or a table of strings", 2)
  end
  local id, message = ringNew(list)
  if id == nil then return nil, message end
  return setmetatable({ id = id }, ConsistentMeta)
end

-- Frees the ring at once (the collector would do it later).
function deleteConsistent(ring)
  ringFree(ringId(ring))
  ring.id = nil
end

-- "host:port" of the server owning key, or nil when no server is available.
function Consistent:findServerForKey(key)
  if type(key) ~= "string" then error("findServerForKey: key must be a string", 2) end
  return ringFind(ringId(self), key)
end

function Consistent:getServerCount() return ringCount(ringId(self)) end

-- 1 when the server is in the ring and available, else 0.
function Consistent:isServerAvailable(name)
  return ringIsAvailable(ringId(self), tostring(name)) and 1 or 0
end

-- The flag comes first, as in the original: setServerAvailable(0, "host:port")
-- takes a server out (its keys move to the others), 1 puts it back. Returns 1,
-- or 0 when the ring has no such server.
function Consistent:setServerAvailable(flag, name)
  local up = flag ~= 0 and flag ~= false and flag ~= nil
  return ringSetAvailable(ringId(self), tostring(name), up) and 1 or 0
end

-- The cluster's servers as "host:port" (empty without --cluster), and this node.
function getClusterServers()
  local servers = {}
  for server in CLUSTER_SERVERS:gmatch("[^,]+") do servers[#servers + 1] = server end
  return servers
end

function getSelfServer()
  if CLUSTER_SELF == "" then return nil end
  return CLUSTER_SELF
end

local function checkServer(server, what)
  if type(server) ~= "string" or find(server, "^[^%s%c]+$") == nil then
    error(what .. ": server must be a \"host:port\" string", 3)
  end
end

local function checkKey(key, what)
  if type(key) ~= "string" or #key == 0 or #key > MAX_KEY_BYTES or find(key, "[%c ]") then
    error(what .. ": keys must be strings of 1 to 250 bytes without spaces or control characters", 3)
  end
end

-- Yields the request ("server k1 k2\nserver2 k3") to the host; returns the
-- values, one slot per key in request order (nil for a miss or a failure).
local function wait(cmd, request, what)
  if getmetatable(cmd) ~= "Command" then error(what .. " must be called on the command", 3) end
  if cmd.thread ~= running() then
    error(what .. " can only wait in the coroutine of its own request (not in one the script created)", 3)
  end
  if cmd.atomic > 0 then
    error(what .. " cannot wait inside an object update (executeReadWrite/ReadOnly/New): fetch first, then update", 3)
  end
  local token, values, failure = yield(WAIT, request)
  if token ~= WAIT then error(what .. ": the request's coroutine was resumed by a script", 3) end
  if failure ~= nil then error(what .. ": " .. failure, 3) end
  return values
end

-- The value of key on server ("host:port"), or nil on a miss, an error, or no
-- answer within --peer-timeout-ms. The remote flags are dropped.
function Command:getFromServer(server, key)
  checkServer(server, "getFromServer")
  checkKey(key, "getFromServer")
  return wait(self, server .. " " .. key, "getFromServer")[1]
end

-- spec = { ["host:port"] = "key" | { "k1", "k2", ... }, ... } asks every server
-- at once; returns { ["host:port"] = { [key] = value, ... }, ... } with a table
-- for every server asked, keys that missed or failed absent.
function Command:getInParallel(spec)
  if type(spec) ~= "table" then error("getInParallel: spec must be a table", 2) end
  local servers, keyLists, lines = {}, {}, {}
  for server, keys in pairs(spec) do
    checkServer(server, "getInParallel")
    if type(keys) ~= "table" then keys = { keys } end
    for i = 1, #keys do checkKey(keys[i], "getInParallel") end
    servers[#servers + 1] = server
    keyLists[#keyLists + 1] = keys
    if #keys > 0 then lines[#lines + 1] = server .. " " .. concat(keys, " ") end
  end
  local result = {}
  for i = 1, #servers do result[servers[i]] = {} end
  if #lines == 0 then return result end
  local values = wait(self, concat(lines, "\n"), "getInParallel")
  local n = 0
  for i = 1, #servers do
    local found = result[servers[i]]
    local keys = keyLists[i]
    for j = 1, #keys do
      n = n + 1
      if values[n] ~= nil then found[keys[j]] = values[n] end
    end
  end
  return result
end
