-- Shapes the global environment every script sees: removes what can reach the
-- host (files, processes, environment, bytecode, debug), keeps the script time
-- budget unbeatable, forbids finalizers, and adds the Lua 5.1 names the
-- original scripts used.
-- Runs first, with the private host table as its argument.
local host = ...

local TIMEOUT = host.TIMEOUT_MESSAGE

io, debug, package = nil, nil, nil
require, dofile, loadfile = nil, nil, nil
string.dump = nil
-- Strings share one metatable; hidden, no script can redefine ("x"):find for all.
getmetatable("").__metatable = "string"

-- os keeps only what reads the clock; os.time() reads the server's clock so
-- that tests can move it.
do
  local osTime, osDate, osClock, osDifftime = os.time, os.date, os.clock, os.difftime
  local floor, now = math.floor, host.now
  os = {
    time = function(t)
      if t == nil then return floor(now()) end
      return osTime(t)
    end,
    date = osDate,
    clock = osClock,
    difftime = osDifftime,
  }
end

-- Text chunks only: a binary chunk could be forged bytecode.
do
  local rawLoad = load
  -- The vararg keeps "no env given" apart from an explicit nil env.
  load = function(chunk, chunkName, _mode, ...) return rawLoad(chunk, chunkName, "t", ...) end
  loadstring = function(s, chunkName) return rawLoad(s, chunkName, "t") end
end

-- A script must not swallow the timeout error and keep running, so every way
-- of catching an error passes it on.
do
  local rawPcall, rawXpcall, rawResume, rawClose = pcall, xpcall, coroutine.resume, coroutine.close
  local error = error
  local function passTimeout(ok, ...)
    if not ok and (...) == TIMEOUT then error(TIMEOUT, 0) end
    return ok, ...
  end
  pcall = function(...) return passTimeout(rawPcall(...)) end
  xpcall = function(f, handler, ...)
    return passTimeout(rawXpcall(f, function(e)
      if e == TIMEOUT then return e end
      return handler(e)
    end, ...))
  end
  coroutine.resume = function(...) return passTimeout(rawResume(...)) end
  coroutine.close = function(...) return passTimeout(rawClose(...)) end
  -- coroutine.wrap re-raises errors itself. Whatever still catches the timeout
  -- gets it again: the hook keeps raising it until the call ends.
end

-- No finalizers: Lua runs __gc with hooks off (the time budget cannot stop it)
-- at any allocation, outside calls too (the heap limit is off) and when a
-- state closes on reload. Lua marks an object for finalization only when its
-- metatable has a __gc field at setmetatable time, so refusing that here is
-- enough. The prelude keeps the real setmetatable for the rings' finalizer,
-- which only calls the host.
do
  local rawSetmetatable, rawget, type, error = setmetatable, rawget, type, error
  host.setmetatable = rawSetmetatable
  setmetatable = function(t, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error("setmetatable: __gc finalizers are not allowed", 2)
    end
    return rawSetmetatable(t, mt)
  end
end

-- The collector may be asked to run, never to stop.
do
  local rawCollect = collectgarbage
  local allowed = { collect = true, count = true, step = true, isrunning = true }
  collectgarbage = function(opt, ...)
    opt = opt or "collect"
    if not allowed[opt] then error("collectgarbage('" .. tostring(opt) .. "') is not allowed", 2) end
    return rawCollect(opt, ...)
  end
end

-- Lua 5.1 names.
unpack = table.unpack
table.getn = function(t) return #t end
table.maxn = function(t)
  local max = 0
  for k in pairs(t) do
    if type(k) == "number" and k > max then max = k end
  end
  return max
end
math.pow = function(x, y) return x ^ y end
math.log10 = function(x) return math.log(x, 10) end
math.ldexp = function(m, e) return m * 2.0 ^ e end
math.mod = math.fmod
string.gfind = string.gmatch
