-- swcounter: a sliding window over the last N values (reference 6.4), e.g.
--   swcounter:new:c1:2  swcounter:add:c1:100  swcounter:getavg:c1
-- All N slots start at 0 and take part in getmin, getmax and getavg, filled
-- or not; getmax starts from 0, as in the original. Values and sizes are
-- finite decimal numbers.
local host = ...
local executeNew, executeReadWrite, needArgument = executeNew, executeReadWrite, needArgument
local executeShared, finiteDecimal = host.executeShared, host.finiteDecimal
local tointeger, error = math.tointeger, error

local DEFAULT_SIZE = 16

local function create(size)
  local n = DEFAULT_SIZE
  if size ~= nil then
    n = tointeger(finiteDecimal(size))
    if n == nil or n < 1 then return nil end
  end
  local values = {}
  for i = 1, n do values[i] = 0 end
  return { values = values, index = 0, size = n }
end

local function add(c, value)
  local v = finiteDecimal(value)
  if v == nil then error("invalid number: " .. value, 0) end
  local index = c.index % c.size + 1
  c.values[index] = v
  c.index = index
  return "SUCCESS"
end

local function getlast(c)
  if c.index == 0 then return 0 end
  return c.values[c.index]
end

local function getmin(c)
  local values = c.values
  local min = values[1]
  for i = 2, c.size do
    if values[i] < min then min = values[i] end
  end
  return min
end

local function getmax(c)
  local values, max = c.values, 0
  for i = 1, c.size do
    if values[i] > max then max = values[i] end
  end
  return max
end

local function getavg(c)
  local values, sum = c.values, 0
  for i = 1, c.size do sum = sum + values[i] end
  return sum / c.size
end

swcounter = {}

function swcounter.new(cmd, key, c, size)
  return executeNew(cmd, key, "swcounter", c, create, size)
end

function swcounter.add(cmd, key, c, value)
  needArgument(c, "object key")
  return executeReadWrite(cmd, key, "swcounter", c, add, needArgument(value, "value"))
end

function swcounter.getlast(cmd, key, c)
  return executeShared(cmd, key, "swcounter", c, getlast)
end

function swcounter.getmin(cmd, key, c)
  return executeShared(cmd, key, "swcounter", c, getmin)
end

function swcounter.getmax(cmd, key, c)
  return executeShared(cmd, key, "swcounter", c, getmax)
end

function swcounter.getavg(cmd, key, c)
  return executeShared(cmd, key, "swcounter", c, getavg)
end
