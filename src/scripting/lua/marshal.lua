-- table.marshal / table.unmarshal / table.clone, in the original's lmarshal
-- format (reference 5.6): the magic byte 0x8E, then key/value pairs. Each value
-- is a type byte and a payload: boolean 1 byte; number an 8-byte little-endian
-- double; string a u32 length and the bytes; table tag 2 + u32 length + pairs,
-- or tag 1 + i32 back-reference to an earlier table (the root is 1).
-- Functions, userdata and threads cannot be marshalled.
local spack, sunpack, byte, concat = string.pack, string.unpack, string.byte, table.concat
local type, next, select, error, tointeger = type, next, select, error, math.tointeger

local MAGIC = "\142"
local T_BOOLEAN, T_NUMBER, T_STRING, T_TABLE = 1, 3, 4, 5
local TAG_REF, TAG_INLINE = 1, 2

-- Per-call state. Neither direction runs script code (no metamethods are
-- consulted), so one call can never start inside another.
local seen, tableCount, refs

local encodePairs

local function encodeValue(v, out, n)
  local tv = type(v)
  n = n + 1
  if tv == "string" then
    out[n] = spack("<Bs4", T_STRING, v)
  elseif tv == "number" then
    out[n] = spack("<Bd", T_NUMBER, v)
  elseif tv == "boolean" then
    out[n] = v and "\1\1" or "\1\0"
  elseif tv == "table" then
    local ref = seen[v]
    if ref then
      out[n] = spack("<BBi4", T_TABLE, TAG_REF, ref)
    else
      tableCount = tableCount + 1
      seen[v] = tableCount
      local body = {}
      encodePairs(v, body, 0)
      out[n] = spack("<BBs4", T_TABLE, TAG_INLINE, concat(body))
    end
  else
    error("table.marshal: cannot marshal a " .. tv .. " value", 0)
  end
  return n
end

encodePairs = function(t, out, n)
  for k, v in next, t do
    n = encodeValue(v, out, encodeValue(k, out, n))
  end
  return n
end

local function corrupt()
  error("table.unmarshal: corrupt data", 0)
end

local decodeValue

local function decodePairs(s, pos, stop, t)
  local k, v
  while pos < stop do
    k, pos = decodeValue(s, pos)
    v, pos = decodeValue(s, pos)
    if k == nil then corrupt() end
    t[k] = v
  end
  if pos ~= stop then corrupt() end
end

decodeValue = function(s, pos)
  local tv = byte(s, pos)
  if tv == T_STRING then
    return sunpack("<s4", s, pos + 1)
  elseif tv == T_NUMBER then
    local v, nextPos = sunpack("<d", s, pos + 1)
    -- Lua 5.1 had one number type; whole numbers come back as integers so
    -- that they print as "3", not "3.0".
    return tointeger(v) or v, nextPos
  elseif tv == T_BOOLEAN then
    return byte(s, pos + 1) ~= 0, pos + 2
  elseif tv == T_TABLE then
    local tag = byte(s, pos + 1)
    if tag == TAG_INLINE then
      local len, start = sunpack("<I4", s, pos + 2)
      local t = {}
      refs[#refs + 1] = t
      decodePairs(s, start, start + len, t)
      return t, start + len
    elseif tag == TAG_REF then
      local ref, nextPos = sunpack("<i4", s, pos + 2)
      local t = refs[ref]
      if t == nil then corrupt() end
      return t, nextPos
    end
  end
  corrupt()
end

-- Both take their LAST argument, so table.marshal(t) and table:marshal(t) work.
local function lastArgument(...)
  local n = select("#", ...)
  if n == 0 then return nil end
  return (select(n, ...))
end

function table.marshal(...)
  local t = lastArgument(...)
  if type(t) ~= "table" then error("table.marshal: table expected", 2) end
  seen, tableCount = { [t] = 1 }, 1
  local out = { MAGIC }
  encodePairs(t, out, 1)
  seen = nil
  return concat(out)
end

function table.unmarshal(...)
  local s = lastArgument(...)
  if type(s) ~= "string" then error("table.unmarshal: string expected", 2) end
  if byte(s, 1) ~= 0x8E then corrupt() end
  local t = {}
  refs = { t }
  decodePairs(s, 2, #s + 1, t)
  refs = nil
  return t
end

function table.clone(...)
  return table.unmarshal(table.marshal(lastArgument(...)))
end
