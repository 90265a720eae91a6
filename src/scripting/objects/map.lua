-- map: string fields to string values (reference 6.1), e.g.
--   map:new:m1  map:put:m1:a:1  map:get:m1:a -> "a : 1"
-- Listings are sorted by field so that replies are reproducible.
local host = ...
local executeNew, executeUpdate, executeCount, needArgument = executeNew, executeUpdate, executeCount, needArgument
local executeShared, loadShared, writeLinesAsValue = host.executeShared, host.loadShared, host.writeLinesAsValue
local writeStringAsValue = writeStringAsValue
local pairs, sort, byte = pairs, table.sort, string.byte
local COLON = 58

local function sortedFields(m)
  local fields, n = {}, 0
  for field in pairs(m) do
    n = n + 1
    fields[n] = field
  end
  sort(fields)
  return fields, n
end

local function create() return {} end

-- A missing value deletes the field, as in the original.
local function put(m, field, value)
  if m[field] == value then return "SUCCESS" end
  return "SUCCESS", field, value
end

local function get(m, field)
  local value = m[field]
  if value == nil then return "NOT_FOUND" end
  return field .. " : " .. value
end

local function delete(m, field)
  if m[field] == nil then return "SUCCESS" end
  return "SUCCESS", field, nil
end

-- The sorted fields of the map, each turned into a line by lineOf (if any),
-- as the reply; ERROR_CACHE_MISS when the map is not stored.
local function writeListing(cmd, key, k, lineOf)
  local m = loadShared("map", needArgument(k, "object key"))
  if m == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  local fields, n = sortedFields(m)
  if lineOf ~= nil then
    for i = 1, n do fields[i] = lineOf(fields[i], m[fields[i]]) end
  end
  return writeLinesAsValue(cmd, key, fields, n)
end

local function valueLine(_, value) return value end
local function fieldValueLine(field, value) return field .. " : " .. value end

map = {}

function map.new(cmd, key, m)
  return executeNew(cmd, key, "map", m, create)
end

-- A key that ends in ':' after the field (map:put:m:f:) puts the empty value:
-- the dispatcher drops a trailing empty segment, but the value is not missing.
function map.put(cmd, key, m, field, value)
  needArgument(m, "object key")
  if value == nil and field ~= nil and byte(key, -1) == COLON then value = "" end
  return executeUpdate(cmd, key, "map", m, put, needArgument(field, "field"), value)
end

function map.get(cmd, key, m, field)
  needArgument(m, "object key")
  return executeShared(cmd, key, "map", m, get, needArgument(field, "field"))
end

function map.delete(cmd, key, m, field)
  needArgument(m, "object key")
  return executeUpdate(cmd, key, "map", m, delete, needArgument(field, "field"))
end

function map.count(cmd, key, m)
  return executeCount(cmd, key, "map", m)
end

function map.getkeys(cmd, key, m)
  return writeListing(cmd, key, m, nil)
end

function map.getvalues(cmd, key, m)
  return writeListing(cmd, key, m, valueLine)
end

function map.getall(cmd, key, m)
  return writeListing(cmd, key, m, fieldValueLine)
end
