-- set: a set of strings, stored as element -> 1 (reference 6.2), e.g.
--   set:new:s1  set:put:s1:x  set:exist:s1:x -> EXISTS  set:union:s1:s2
-- Listings are sorted so that replies are reproducible.
local host = ...
local executeNew, executeUpdate, executeCount, needArgument = executeNew, executeUpdate, executeCount, needArgument
local executeShared, loadShared, writeLinesAsValue = host.executeShared, host.loadShared, host.writeLinesAsValue
local writeStringAsValue = writeStringAsValue
local pairs, sort = pairs, table.sort

local function writeSorted(cmd, key, elements, n)
  sort(elements)
  return writeLinesAsValue(cmd, key, elements, n)
end

local function create() return {} end

local function put(s, element)
  if s[element] ~= nil then return "SUCCESS" end
  return "SUCCESS", element, 1
end

local function exists(s, element)
  if s[element] ~= nil then return "EXISTS" end
  return "NOT_FOUND"
end

local function delete(s, element)
  if s[element] == nil then return "SUCCESS" end
  return "SUCCESS", element, nil
end

-- Both sets must exist; a missing one answers ERROR_CACHE_MISS.
local function loadPair(k1, k2)
  needArgument(k1, "object key")
  needArgument(k2, "second object key")
  local s1, s2 = loadShared("set", k1), loadShared("set", k2)
  if s1 == nil or s2 == nil then return nil end
  return s1, s2
end

set = {}

function set.new(cmd, key, s)
  return executeNew(cmd, key, "set", s, create)
end

function set.put(cmd, key, s, element)
  needArgument(s, "object key")
  return executeUpdate(cmd, key, "set", s, put, needArgument(element, "element"))
end

function set.exist(cmd, key, s, element)
  needArgument(s, "object key")
  return executeShared(cmd, key, "set", s, exists, needArgument(element, "element"))
end
set.exists = set.exist

function set.delete(cmd, key, s, element)
  needArgument(s, "object key")
  return executeUpdate(cmd, key, "set", s, delete, needArgument(element, "element"))
end

function set.count(cmd, key, s)
  return executeCount(cmd, key, "set", s)
end

function set.getall(cmd, key, k)
  local s = loadShared("set", needArgument(k, "object key"))
  if s == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  local elements, n = {}, 0
  for element in pairs(s) do
    n = n + 1
    elements[n] = element
  end
  return writeSorted(cmd, key, elements, n)
end

function set.union(cmd, key, k1, k2)
  local s1, s2 = loadPair(k1, k2)
  if s1 == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  local elements, n = {}, 0
  for element in pairs(s1) do
    n = n + 1
    elements[n] = element
  end
  for element in pairs(s2) do
    if s1[element] == nil then
      n = n + 1
      elements[n] = element
    end
  end
  return writeSorted(cmd, key, elements, n)
end

function set.intersection(cmd, key, k1, k2)
  local s1, s2 = loadPair(k1, k2)
  if s1 == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  local elements, n = {}, 0
  for element in pairs(s1) do
    if s2[element] ~= nil then
      n = n + 1
      elements[n] = element
    end
  end
  return writeSorted(cmd, key, elements, n)
end
