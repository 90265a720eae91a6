-- quota: a counter with a limit per calendar hour, day or month (reference 6.3), e.g.
--   quota:new:q1:100:day  quota:addandcheck:q1 -> QUOTA_OK | QUOTA_EXCEEDED
-- Fields: limit, type, count, expiresAt. Windows are aligned to the UTC
-- calendar (the original used local time): the count starts again at 0 on the
-- first addandcheck at or after the next boundary. The clock is os.time(),
-- which reads the server's clock. Limits and amounts are finite decimal
-- numbers, amounts not negative.
local host = ...
local executeNew, executeUpdate = executeNew, executeUpdate
local finiteDecimal = host.finiteDecimal
local time, date, error = os.time, os.date, error

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
local function daysFromCivil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
end

local nextBoundary = {
  hour = function(now) return (now // 3600 + 1) * 3600 end,
  day = function(now) return (now // 86400 + 1) * 86400 end,
  month = function(now)
    local t = date("!*t", now)
    local y, m = t.year, t.month + 1
    if m == 13 then y, m = y + 1, 1 end
    return daysFromCivil(y, m, 1) * 86400
  end,
}

local function create(limit, period)
  limit = finiteDecimal(limit)
  if limit == nil or limit < 0 or nextBoundary[period] == nil then return nil end
  return { limit = limit, type = period, count = 0, expiresAt = nextBoundary[period](time()) }
end

-- Returns the reply, then the fields that change (executeUpdate).
local function addandcheck(q, amount)
  local n = 1
  if amount ~= nil then
    n = finiteDecimal(amount)
    if n == nil or n < 0 then error("invalid amount: " .. amount, 0) end
  end
  local now, count = time(), q.count
  if now >= q.expiresAt then
    local expiresAt = nextBoundary[q.type](now)
    if n > q.limit then return "QUOTA_EXCEEDED", "count", 0, "expiresAt", expiresAt end
    return "QUOTA_OK", "count", n, "expiresAt", expiresAt
  end
  if count + n > q.limit then return "QUOTA_EXCEEDED" end
  return "QUOTA_OK", "count", count + n
end

local function reset(q)
  if q.count == 0 then return "QUOTA_OK" end
  return "QUOTA_OK", "count", 0
end

quota = {}

function quota.new(cmd, key, q, limit, period)
  return executeNew(cmd, key, "quota", q, create, limit, period)
end

function quota.addandcheck(cmd, key, q, amount)
  return executeUpdate(cmd, key, "quota", q, addandcheck, amount)
end

function quota.reset(cmd, key, q)
  return executeUpdate(cmd, key, "quota", q, reset)
end
