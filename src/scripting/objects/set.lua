-- set: a set of strings, stored as element -> 1 (reference 6.2), e.g.
--   set:new:s1  set:put:s1:x  set:exist:s1:x -> EXISTS  set:union:s1:s2
-- Listings are sorted so that replies are reproducible.
local host = ...
local executeNew, executeReadWrite, needArgument = executeNew, executeReadWrite, needArgument
local executeShared, loadShared = host.executeShared, host.loadShared
local writeStringAsValue = writeStringAsValue
local pairs, sort, concat = pairs, table.sort, table.concat

local function lines(elements, n)
  if n == 0 then return "" end
  sort(elements)
  return concat(elements, "\r\n") .. "\r\n"
end

local function create() return {} end

local function put(s, element)
  if s[element] ~= nil then return "SUCCESS", false end
  s[element] = 1
  return "SUCCESS"
end

local function exists(s, element)
  if s[element] ~= nil then return "EXISTS" end
  return "NOT_FOUND"
end

local function delete(s, element)
  if s[element] == nil then return "SUCCESS", false end
  s[element] = nil
  return "SUCCESS"
end

local function count(s)
  local n = 0
  for _ in pairs(s) do n = n + 1 end
  return n
end

local function getall(s)
  local elements, n = {}, 0
  for element in pairs(s) do
    n = n + 1
    elements[n] = element
  end
  return lines(elements, n)
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
  return executeReadWrite(cmd, key, "set", s, put, needArgument(element, "element"))
end

function set.exist(cmd, key, s, element)
  needArgument(s, "object key")
  return executeShared(cmd, key, "set", s, exists, needArgument(element, "element"))
end
set.exists = set.exist

function set.delete(cmd, key, s, element)
  needArgument(s, "object key")
  return executeReadWrite(cmd, key, "set", s, delete, needArgument(element, "element"))
end

function set.count(cmd, key, s)
  return executeShared(cmd, key, "set", s, count)
end

function set.getall(cmd, key, s)
  return executeShared(cmd, key, "set", s, getall)
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
  return writeStringAsValue(cmd, key, lines(elements, n))
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
  return writeStringAsValue(cmd, key, lines(elements, n))
end
