-- map: string fields to string values (reference 6.1), e.g.
--   map:new:m1  map:put:m1:a:1  map:get:m1:a -> "a : 1"
-- Listings are sorted by field so that replies are reproducible.
local host = ...
local executeNew, executeReadWrite, needArgument = executeNew, executeReadWrite, needArgument
local executeShared = host.executeShared
local pairs, sort, concat, byte = pairs, table.sort, table.concat, string.byte
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
  if m[field] == value then return "SUCCESS", false end
  m[field] = value
  return "SUCCESS"
end

local function get(m, field)
  local value = m[field]
  if value == nil then return "NOT_FOUND" end
  return field .. " : " .. value
end

local function delete(m, field)
  if m[field] == nil then return "SUCCESS", false end
  m[field] = nil
  return "SUCCESS"
end

local function count(m)
  local n = 0
  for _ in pairs(m) do n = n + 1 end
  return n
end

local function getkeys(m)
  local fields, n = sortedFields(m)
  if n == 0 then return "" end
  return concat(fields, "\r\n") .. "\r\n"
end

local function getvalues(m)
  local fields, n = sortedFields(m)
  for i = 1, n do fields[i] = m[fields[i]] .. "\r\n" end
  return concat(fields)
end

local function getall(m)
  local fields, n = sortedFields(m)
  for i = 1, n do
    local field = fields[i]
    fields[i] = field .. " : " .. m[field] .. "\r\n"
  end
  return concat(fields)
end

map = {}

function map.new(cmd, key, m)
  return executeNew(cmd, key, "map", m, create)
end

-- A key that ends in ':' after the field (map:put:m:f:) puts the empty value:
-- the dispatcher drops a trailing empty segment, but the value is not missing.
function map.put(cmd, key, m, field, value)
  needArgument(m, "object key")
  if value == nil and field ~= nil and byte(key, -1) == COLON then value = "" end
  return executeReadWrite(cmd, key, "map", m, put, needArgument(field, "field"), value)
end

function map.get(cmd, key, m, field)
  needArgument(m, "object key")
  return executeShared(cmd, key, "map", m, get, needArgument(field, "field"))
end

function map.delete(cmd, key, m, field)
  needArgument(m, "object key")
  return executeReadWrite(cmd, key, "map", m, delete, needArgument(field, "field"))
end

function map.count(cmd, key, m)
  return executeShared(cmd, key, "map", m, count)
end

function map.getkeys(cmd, key, m)
  return executeShared(cmd, key, "map", m, getkeys)
end

function map.getvalues(cmd, key, m)
  return executeShared(cmd, key, "map", m, getvalues)
end

function map.getall(cmd, key, m)
  return executeShared(cmd, key, "map", m, getall)
end
