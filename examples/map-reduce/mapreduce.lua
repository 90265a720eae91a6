-- Map-reduce over a cacheismo cluster, after the original author's blog post
-- (2011-10-13): a coordinator asks every node at once with getInParallel,
-- each node computes over its own objects, and the coordinator merges.
--
--   mapreduce:stats:<prefix>      every node's swcounters whose key starts with
--                                 <prefix> ("*": all of them), merged:
--                                 "counters=5 nodes=3/3 mean=42 min=10 max=70"
--                                 (mean, min and max of the counters' averages)
--   mapreduce:avg:<k1>[:<k2>...]  the mean of swcounter:getavg over the named
--                                 counters, each asked of the node that owns it
--   mapreduce:node:<tag>:<prefix> the map step, on the node that owns <tag>
--
-- A virtual key runs on the node owning its object key (its third segment),
-- so the coordinator reaches a given node's map step through a tag that the
-- node owns: newConsistent() hashes like the server's own routing.
-- Needs -e --cluster --peers ...; see README.md.
local format, match, sub, tonumber = string.format, string.match, string.sub, tonumber
local huge = math.huge

local COUNTERS = storageKey("swcounter", "")

local ring -- over --peers, made on first use
local tags = {} -- server -> a key that server owns

local function servers()
  local list = getClusterServers()
  if #list == 0 then error("mapreduce needs --cluster --peers ...", 0) end
  ring = ring or newConsistent()
  return list
end

local function tagOwnedBy(server)
  local tag = tags[server]
  if tag ~= nil then return tag end
  for i = 0, 100000 do
    tag = "n" .. i
    if ring:findServerForKey(tag) == server then
      tags[server] = tag
      return tag
    end
  end
  error("no key found for " .. server, 0)
end

local function num(n) return format("%.14g", n) end

-- The average of one stored swcounter (all its slots, as swcounter:getavg).
local function average(counter)
  local sum = 0
  for i = 1, counter.size do sum = sum + counter.values[i] end
  return sum / counter.size
end

mapreduce = {}

-- Map: "count sum min max" of the averages of this node's matching counters,
-- or "0" when it has none.
function mapreduce.node(cmd, key, tag, prefix)
  needArgument(prefix, "prefix")
  if prefix == "*" then prefix = "" end
  local keys = getHashMap():getPrefixMatchingKeys(COUNTERS .. prefix) or {}
  local count, sum, min, max = 0, 0, huge, -huge
  for i = 1, #keys do
    local counter = loadObject("swcounter", sub(keys[i], #COUNTERS + 1))
    if counter ~= nil then
      local avg = average(counter)
      count, sum = count + 1, sum + avg
      if avg < min then min = avg end
      if avg > max then max = avg end
    end
  end
  if count == 0 then return "0" end
  return format("%d %.17g %.17g %.17g", count, sum, min, max)
end

-- Reduce: asks every node's map step at once and merges the answers. Nodes
-- that do not answer within --peer-timeout-ms are left out (see nodes=).
function mapreduce.stats(cmd, key, prefix)
  needArgument(prefix, "prefix")
  local spec, list = {}, servers()
  for i = 1, #list do spec[list[i]] = "mapreduce:node:" .. tagOwnedBy(list[i]) .. ":" .. prefix end
  local answers = cmd:getInParallel(spec)
  local count, sum, min, max, answered = 0, 0, huge, -huge, 0
  for server, nodeKey in pairs(spec) do
    local reply = answers[server][nodeKey]
    local n, s, lo, hi = match(reply or "", "^(%d+) (%S+) (%S+) (%S+)$")
    if reply == "0" or n ~= nil then answered = answered + 1 end
    if n ~= nil then
      count, sum = count + tonumber(n), sum + tonumber(s)
      if tonumber(lo) < min then min = tonumber(lo) end
      if tonumber(hi) > max then max = tonumber(hi) end
    end
  end
  local nodes = format("nodes=%d/%d", answered, #list)
  if count == 0 then return "counters=0 " .. nodes end
  return format("counters=%d %s mean=%s min=%s max=%s", count, nodes, num(sum / count), num(min), num(max))
end

-- Fans swcounter:getavg out to the owners of the named counters, one request
-- per owner, all at once; counters that are missing are not counted.
function mapreduce.avg(cmd, key, ...)
  local names = { ... }
  needArgument(names[1], "counter key")
  servers()
  local spec = {}
  for i = 1, #names do
    local owner = ring:findServerForKey(names[i])
    spec[owner] = spec[owner] or {}
    spec[owner][#spec[owner] + 1] = "swcounter:getavg:" .. names[i]
  end
  local answers = cmd:getInParallel(spec)
  local count, sum = 0, 0
  for server, keys in pairs(spec) do
    for i = 1, #keys do
      local avg = tonumber(answers[server][keys[i]])
      if avg ~= nil then count, sum = count + 1, sum + avg end
    end
  end
  if count == 0 then return "counters=0" end
  return format("counters=%d avg=%s", count, num(sum / count))
end
