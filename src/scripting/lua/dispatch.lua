-- Virtual keys: `<type>:<method>[:<arg>...]` calls _G[type][method](command,
-- key, arg...) when <type> is a registered object type and the method is a
-- function. Only globals that an object script (bundled or user) created or
-- replaced are types, so `core:flush_all`, `os:exit` or `print:x` stay plain keys.
-- Runs last among the prelude chunks; returns the entry points for the host.
local host = ...
local find, sub = string.find, string.sub
local type, rawget, rawequal, pairs, tostring, load, pcall = type, rawget, rawequal, pairs, tostring, load, pcall
local newCommand, takeReply, registerType = host.newCommand, host.takeReply, host.registerType

-- Names present before any object script ran (the standard library, the API,
-- the helpers) can never become types.
local reserved = {}
for name in pairs(_G) do reserved[name] = true end

local types = {}

-- The bundled types as they were loaded: name -> { table = t, names = { method }, fns = { function } }.
local bundledTypes = {}

local function snapshot(t)
  local names, fns = {}, {}
  for name, fn in pairs(t) do
    names[#names + 1] = name
    fns[#names] = fn
  end
  return { table = t, names = names, fns = fns }
end

-- Whether the bundled type `name` is still the table it was loaded as, with every method it was
-- loaded with (looked up as dispatch does). A user script may replace or wrap them, at load or in
-- a call; the host then sends that type's calls to Lua. Kept to plain loops (~= on functions
-- never calls a metamethod).
local function intact(name)
  local b = bundledTypes[name]
  if b == nil then return false end
  local t, names, fns = b.table, b.names, b.fns
  if not rawequal(rawget(_G, name), t) then return false end
  for i = 1, #names do
    if t[names[i]] ~= fns[i] then return false end
  end
  return true
end

-- The bundled types the host serves without Lua while they are intact (set by watch).
local watched = {}

-- Bit i - 1 set for each watched[i] that is intact.
local function intactMask()
  local mask = 0
  for i = 1, #watched do
    if intact(watched[i]) then mask = mask | (1 << (i - 1)) end
  end
  return mask
end

-- watch(name...): the types intactMask reports on; returns intactMask().
local function watch(...)
  watched = { ... }
  return intactMask()
end

-- The segments from pos on, as multiple values (no table): every ':' splits,
-- empty segments are kept, a trailing ':' adds nothing.
local function segments(key, pos)
  if pos > #key then return end
  local colon = find(key, ":", pos, true)
  if colon == nil then return sub(key, pos) end
  return sub(key, pos, colon - 1), segments(key, colon + 1)
end

-- The reply block (a string, possibly empty) or nil for a plain key.
local function dispatch(key)
  local c1 = find(key, ":", 1, true)
  if c1 == nil then return nil end
  local typeName = sub(key, 1, c1 - 1)
  if not types[typeName] then return nil end
  local object = rawget(_G, typeName)
  if type(object) ~= "table" then return nil end
  local c2 = find(key, ":", c1 + 1, true)
  local handler = object[sub(key, c1 + 1, (c2 or 0) - 1)]
  if type(handler) ~= "function" then return nil end
  local cmd = newCommand(key)
  if c2 == nil then return takeReply(cmd, key, handler(cmd, key)) end
  return takeReply(cmd, key, handler(cmd, key, segments(key, c2 + 1)))
end

-- Runs one object script; every global table it creates or replaces becomes
-- a type (and is announced to the host, which skips Lua for other keys).
-- Bundled scripts get the host table as their argument, user scripts nothing.
-- Returns nil, or the error as "<name>:<line>: <message>".
local function loadScript(name, code, bundled)
  local chunk, err = load(code, "=" .. name, "t")
  if chunk == nil then return err end
  local before = {}
  for k, v in pairs(_G) do before[k] = v end
  local ok, runErr = pcall(chunk, bundled and host or nil)
  if not ok then return tostring(runErr) end
  for k, v in pairs(_G) do
    if type(v) == "table" and before[k] ~= v and type(k) == "string" and not reserved[k] then
      types[k] = true
      if bundled then bundledTypes[k] = snapshot(v) end
      registerType(k)
    end
  end
  return nil
end

return { dispatch = dispatch, loadScript = loadScript, watch = watch, intactMask = intactMask }
