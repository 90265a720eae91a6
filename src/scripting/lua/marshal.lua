-- table.marshal / table.unmarshal / table.clone, in the original's lmarshal
-- format (reference 5.6): the magic byte 0x8E, then key/value pairs. Each value
-- is a type byte and a payload: boolean 1 byte; number an 8-byte little-endian
-- double; string a u32 length and the bytes; table tag 2 + u32 length + pairs,
-- or tag 1 + i32 back-reference to an earlier table (the root is 1).
-- Functions, userdata and threads cannot be marshalled.
-- Extension for objects kept as append logs (core.lua): pairs appended after
-- the first set of a key replace it, and a value of type 0 (nil, no payload)
-- removes the key. table.marshal never writes one; table.unmarshal reads them.
local host = ...
local spack, sunpack, byte, concat = string.pack, string.unpack, string.byte, table.concat
local type, next, select, error, tointeger = type, next, select, error, math.tointeger

local MAGIC = "\142"
local T_NIL, T_BOOLEAN, T_NUMBER, T_STRING, T_TABLE = 0, 1, 3, 4, 5
local TAG_REF, TAG_INLINE = 1, 2

-- Most pairs are string/number keys with string/number values: one pack each.
local CODE = { string = T_STRING, number = T_NUMBER }
local PAIR_FORMAT = {
  string = { string = "<Bs4Bs4", number = "<Bs4Bd" },
  number = { string = "<BdBs4", number = "<BdBd" },
}

-- State lives in per-call tables, not upvalues: a finalizer run by the
-- collector in the middle of a call may itself marshal.

local encodePairs

-- seen maps each table met so far to its reference number; seen.n counts them.
local function encodeValue(v, out, n, seen)
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
      seen.refs = true
      out[n] = spack("<BBi4", T_TABLE, TAG_REF, ref)
    else
      seen.n = seen.n + 1
      seen[v] = seen.n
      local body = {}
      encodePairs(v, body, 0, seen)
      out[n] = spack("<BBs4", T_TABLE, TAG_INLINE, concat(body))
    end
  else
    error("table.marshal: cannot marshal a " .. tv .. " value", 0)
  end
  return n
end

-- One key and its value into out[n + 1 ...]; returns the new n.
local function encodePair(k, v, out, n, seen)
  local formats = PAIR_FORMAT[type(k)]
  local format = formats and formats[type(v)]
  if format then
    n = n + 1
    out[n] = spack(format, CODE[type(k)], k, CODE[type(v)], v)
    return n
  end
  return encodeValue(v, out, encodeValue(k, out, n, seen), seen)
end

encodePairs = function(t, out, n, seen)
  for k, v in next, t do n = encodePair(k, v, out, n, seen) end
  return n
end

local function corrupt()
  error("table.unmarshal: corrupt data", 0)
end

local decodeValue

-- refs lists the tables decoded so far, by reference number. Returns the
-- pairs read and how many keys t gained (negative when removals won).
local function decodePairs(s, pos, stop, t, refs)
  local k, v
  local records, gained = 0, 0
  while pos < stop do
    -- Inline fast paths for string keys and string/number values.
    if byte(s, pos) == T_STRING then
      k, pos = sunpack("<s4", s, pos + 1)
    else
      k, pos = decodeValue(s, pos, refs)
      if k == nil then corrupt() end
    end
    local tv = byte(s, pos)
    if tv == T_NUMBER then
      v, pos = sunpack("<d", s, pos + 1)
      v = tointeger(v) or v
    elseif tv == T_STRING then
      v, pos = sunpack("<s4", s, pos + 1)
    elseif tv == T_NIL then
      v, pos = nil, pos + 1
    else
      v, pos = decodeValue(s, pos, refs)
    end
    if t[k] == nil then
      if v ~= nil then gained = gained + 1 end
    elseif v == nil then
      gained = gained - 1
    end
    t[k] = v
    records = records + 1
  end
  if pos ~= stop then corrupt() end
  return records, gained
end

decodeValue = function(s, pos, refs)
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
      decodePairs(s, start, start + len, t, refs)
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
  local out = { MAGIC }
  encodePairs(t, out, 1, { [t] = 1, n = 1 })
  return concat(out)
end

function table.unmarshal(...)
  local s = lastArgument(...)
  if type(s) ~= "string" then error("table.unmarshal: string expected", 2) end
  if byte(s, 1) ~= 0x8E then corrupt() end
  local t = {}
  decodePairs(s, 2, #s + 1, t, { t })
  return t
end

function table.clone(...)
  return table.unmarshal(table.marshal(lastArgument(...)))
end

-- For core.lua's object logs. decodeInto(t, s, pos) applies the pairs of s
-- from pos on to t (pos 2 for a whole marshalled object, after the magic byte;
-- 1 for pairs appended later) and returns the pairs read and the keys gained.
-- Nested tables are numbered after t, as the records encodeChanges writes.

function host.decodeInto(t, s, pos)
  if pos == 2 and byte(s, 1) ~= 0x8E then corrupt() end
  return decodePairs(s, pos, #s + 1, t, { t })
end

-- The pairs (k1, v1, k2, v2, ...) of fields changed on t as one log record (a
-- nil value removes the key), or nil when a value refers to a table met
-- before, which only a whole marshal can number right.
function host.encodeChanges(t, ...)
  local out, n, seen = {}, 0, { [t] = 1, n = 1 }
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    if k == nil then error("table index is nil", 0) end
    if v == nil then
      n = encodeValue(k, out, n, seen) + 1
      out[n] = "\0"
    else
      n = encodePair(k, v, out, n, seen)
    end
  end
  if seen.refs then return nil end
  return concat(out)
end
