// The scripting engine around the objects: user scripts and reload, the Lua
// API scripts see (reference section 5, acceptance rows 44-46), the sandbox,
// the time and memory budgets, and recovery from a broken Lua engine.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createScripting, type Scripting, type ScriptingOptions } from "../src/scripting/engine.ts";
import { immediateReply } from "./helpers/immediate.ts";
import { MapStore } from "./helpers/map-store.ts";



const decoder = new TextDecoder();
const open: Scripting[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A scripts dir holding `files` (name → Lua source). */
function scriptsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "cacheismo-scripts-"));
  dirs.push(dir);
  for (const [name, code] of Object.entries(files)) writeFileSync(join(dir, name), code);
  return dir;
}

interface Started {
  s: Scripting;
  store: MapStore;
  logs: string[];
}

async function start(files: Record<string, string> = {}, options: Partial<ScriptingOptions> = {}): Promise<Started> {
  const store = new MapStore();
  const logs: string[] = [];
  const s = await createScripting({
    store,
    scriptsDir: scriptsDir(files),
    timeoutMs: 100,
    memoryMb: 16,
    log: (level, msg) => logs.push(`${level}: ${msg}`),
    ...options,
  });
  open.push(s);
  return { s, store, logs };
}

function reply(s: Scripting, key: string): string | null {
  const bytes = immediateReply(s, key);
  return bytes === null ? null : decoder.decode(bytes);
}

/** The payload of the VALUE block for `key`. */
function value(s: Scripting, key: string): string {
  const text = reply(s, key);
  const header = `VALUE ${key} 0 `;
  if (text === null || !text.startsWith(header)) throw new Error(`${key}: not a VALUE block: ${JSON.stringify(text)}`);
  return text.slice(text.indexOf("\r\n") + 2, -2);
}

describe("user scripts", () => {
  test("a global table in a scripts-dir file is an object type: foo:bar:x calls foo.bar", async () => {
    const { s } = await start({
      "foo.lua": `foo = { bar = function(cmd, key, x) return "bar called with " .. x end }`,
    });
    expect(reply(s, "foo:bar:x")).toBe("VALUE foo:bar:x 0 17\r\nbar called with x\r\n");
    expect(s.handleGetKey("foo:baz:x")).toBeNull();
  });

  test("every segment after the method is an argument, as a string", async () => {
    const { s } = await start({
      "args.lua": `args = { list = function(cmd, key, ...) local n = select("#", ...) return n .. ":" .. table.concat({ ... }, ",") .. ":" .. type((...)) end }`,
    });
    expect(value(s, "args:list:a:b::d:5")).toBe("5:a,b,,d,5:string");
  });

  test("a syntax error is reported with file and line and the other files keep working", async () => {
    const { s, logs } = await start({
      "bad.lua": "bad = {}\n\nfunction bad.f( return end\n",
      "good.lua": `good = { f = function() return "ok" end }`,
    });
    expect(logs.some((l) => l.startsWith("error: scripts: bad.lua:3:"))).toBe(true);
    expect(value(s, "good:f")).toBe("ok");
    expect(value(s, "map:new:m1")).toBe("CREATED");
    expect(s.handleGetKey("bad:f")).toBeNull();
    const errors = await s.reload();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad\.lua:3: /);
  });

  test("a runtime error while loading is reported with file and line", async () => {
    const { s } = await start({ "boom.lua": `boom = {}\nerror("no luck")\n` });
    expect(await s.reload()).toEqual(["boom.lua:2: no luck"]);
    expect(s.handleGetKey("boom:x")).toBeNull();
  });

  test("a file that loops forever while loading is stopped and reported", async () => {
    const { s } = await start({ "loop.lua": "while true do end", "ok.lua": `ok = { f = function() return 1 end }` });
    expect(await s.reload()).toEqual(["loop.lua: script timeout"]);
    expect(value(s, "ok:f")).toBe("1");
  });

  test("reload picks up new, changed and removed files; stored objects survive", async () => {
    const store = new MapStore();
    const dir = scriptsDir({ "v.lua": `v = { get = function() return "one" end }` });
    const s = await createScripting({ store, scriptsDir: dir, timeoutMs: 100, memoryMb: 16 });
    open.push(s);
    value(s, "map:new:m1");
    value(s, "map:put:m1:a:1");
    expect(value(s, "v:get")).toBe("one");

    writeFileSync(join(dir, "v.lua"), `v = { get = function() return "two" end }`);
    writeFileSync(join(dir, "w.lua"), `w = { get = function() return "new" end }`);
    expect(await s.reload()).toEqual([]);
    expect(value(s, "v:get")).toBe("two");
    expect(value(s, "w:get")).toBe("new");
    expect(value(s, "map:get:m1:a")).toBe("a : 1");

    unlinkSync(join(dir, "w.lua"));
    await s.reload();
    expect(s.handleGetKey("w:get")).toBeNull();
  });

  test("a missing scripts dir is reported and the bundled types still work", async () => {
    const logs: string[] = [];
    const s = await createScripting({
      store: new MapStore(),
      scriptsDir: "/nonexistent/cacheismo-scripts",
      timeoutMs: 100,
      memoryMb: 16,
      log: (level, msg) => logs.push(`${level}: ${msg}`),
    });
    open.push(s);
    expect(logs.some((l) => l.startsWith("error: scripts: /nonexistent/cacheismo-scripts:"))).toBe(true);
    expect(value(s, "set:new:s1")).toBe("CREATED");
  });

  test("an empty scripts dir setting means bundled types only, without errors", async () => {
    const logs: string[] = [];
    const s = await createScripting({ store: new MapStore(), scriptsDir: "", timeoutMs: 100, memoryMb: 16, log: (level, msg) => logs.push(`${level}: ${msg}`) });
    open.push(s);
    expect(logs).toEqual([]);
    expect(await s.reload()).toEqual([]);
    expect(value(s, "map:new:m1")).toBe("CREATED");
  });

  test("only tables become types: a script's global functions and numbers stay plain keys", async () => {
    const { s } = await start({ "misc.lua": `helper = function() return 1 end\nLIMIT = 5\nobj = { f = function() return helper() + LIMIT end }` });
    expect(s.handleGetKey("helper:x")).toBeNull();
    expect(s.handleGetKey("LIMIT:x")).toBeNull();
    expect(value(s, "obj:f")).toBe("6");
  });

  test("a user script may add methods to a bundled type", async () => {
    const { s } = await start({
      "mapx.lua": `function map.size(cmd, key, m)
  return executeReadOnly(cmd, key, "map", m, function(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n * 10 end)
end`,
    });
    value(s, "map:new:m1");
    value(s, "map:put:m1:a:1");
    expect(value(s, "map:size:m1")).toBe("10");
  });

  test("replacing the global helpers cannot break the bundled types", async () => {
    const { s } = await start({
      "hijack.lua": `executeReadWrite = function() error("hijacked") end
executeNew, needArgument, writeStringAsValue, pairs = nil, nil, nil, nil
custom = { put = function(cmd, key, m) return executeReadWrite(cmd, key, "map", m, function() end) end }`,
    });
    expect(value(s, "map:new:m1")).toBe("CREATED");
    expect(value(s, "map:put:m1:a:1")).toBe("SUCCESS");
    expect(value(s, "map:getall:m1")).toBe("a : 1\r\n");
    expect(reply(s, "custom:put:m1")).toStartWith("SERVER_ERROR ");
  });

  test("scripts cannot patch the shared metatables of the API and of strings", async () => {
    const { s } = await start({
      "patch.lua": `patch = {}
function patch.hashmap() getmetatable(getHashMap()).get = nil end
function patch.command(cmd) getmetatable(cmd).writeString = nil end
function patch.string() getmetatable("").__index = {} end
function patch.check(cmd) return getmetatable(cmd) .. "," .. tostring(getHashMap():get("x")) .. "," .. ("abc"):sub(2) end`,
    });
    expect(reply(s, "patch:hashmap")).toStartWith("SERVER_ERROR ");
    expect(reply(s, "patch:command")).toStartWith("SERVER_ERROR ");
    expect(reply(s, "patch:string")).toStartWith("SERVER_ERROR ");
    expect(value(s, "patch:check")).toBe("Command,nil,bc");
  });
});

describe("handler replies", () => {
  test("a returned value becomes a VALUE block; numbers print like Lua 5.1 (%.14g)", async () => {
    const { s } = await start({
      "nums.lua": `nums = {
  int = function() return 75 end,
  half = function() return 57 / 2 end,
  frac = function() return 3 / 16 end,
  big = function() return 2^53 end,
  bool = function() return true end,
}`,
    });
    expect(value(s, "nums:int")).toBe("75");
    expect(value(s, "nums:half")).toBe("28.5");
    expect(value(s, "nums:frac")).toBe("0.1875");
    expect(value(s, "nums:big")).toBe("9.007199254741e+15");
    expect(value(s, "nums:bool")).toBe("true");
  });

  test("a handler that writes and returns nothing gives an empty reply", async () => {
    const { s } = await start({ "quiet.lua": `quiet = { f = function() end }` });
    const bytes = immediateReply(s, "quiet:f");
    expect(bytes).not.toBeNull();
    expect(bytes!.length).toBe(0);
  });

  test("writeString output is the reply, raw and in order, and wins over a return value", async () => {
    const { s } = await start({
      "raw.lua": `raw = { f = function(cmd, key, a, b)
  cmd:writeString("VALUE " .. a .. " 0 1\\r\\nx\\r\\n")
  cmd:writeString("VALUE " .. b .. " 0 1\\r\\ny\\r\\n")
  return "ignored"
end }`,
    });
    expect(reply(s, "raw:f:k1:k2")).toBe("VALUE k1 0 1\r\nx\r\nVALUE k2 0 1\r\ny\r\n");
  });

  test("a Lua error becomes SERVER_ERROR with its message on one line", async () => {
    const { s } = await start({
      "errs.lua": `errs = {
  multiline = function() error("first\\nsecond\\r\\nthird", 0) end,
  located = function() local t = nil; return t.field end,
  table = function() error({ code = 1 }) end,
}`,
    });
    expect(reply(s, "errs:multiline")).toBe("SERVER_ERROR first second third\r\n");
    expect(reply(s, "errs:located")).toMatch(/^SERVER_ERROR errs\.lua:3: attempt to index a nil value \(local 't'\)\r\n$/);
    expect(reply(s, "errs:table")).toBe("SERVER_ERROR script raised a non-string error\r\n");
  });

  test("an exception thrown by the store becomes SERVER_ERROR and the next call works", async () => {
    const { s, store } = await start();
    value(s, "map:new:m1");
    store.failWith = new Error("arena exploded");
    expect(reply(s, "map:get:m1:a")).toBe("SERVER_ERROR arena exploded\r\n");
    store.failWith = null;
    expect(value(s, "map:get:m1:a")).toBe("NOT_FOUND");
  });

  test("errors are logged as warnings with the key", async () => {
    const { s, logs } = await start();
    reply(s, "map:get");
    expect(logs).toContain("warn: virtual key map:get: missing argument: object key");
  });
});

describe("Lua API for scripts", () => {
  test("getHashMap put/get round-trips an item built by command:newCacheItem", async () => {
    const { s, store } = await start({
      "api.lua": `api = {}
function api.roundtrip(cmd, key)
  cmd:setKey("k1"); cmd:setData("hello"); cmd:setFlags(42); cmd:setExpiryTime(0)
  local item = cmd:newCacheItem()
  assert(getHashMap():put(item) == true)
  local got = getHashMap():get("k1")
  local fields = { got:getKey(), got:getKeySize(), got:getFlags(), got:getDataSize(), got:getData(), got:getExpiryTime() }
  got:delete()
  return table.concat(fields, ",")
end`,
    });
    expect(value(s, "api:roundtrip")).toBe("k1,2,42,5,hello,0");
    const item = store.items.get("k1")!;
    expect(decoder.decode(item.data)).toBe("hello");
    expect(item.flags).toBe(42);
  });

  test("get of a missing key is nil; delete removes; deleteLRU evicts from the cold end", async () => {
    const { s, store } = await start({
      "api.lua": `api = {}
function api.missing() return tostring(getHashMap():get("nope")) end
function api.delete(cmd, key, k) return tostring(getHashMap():delete(k)) end
function api.evict(cmd, key, n) return getHashMap():deleteLRU(tonumber(n)) end`,
    });
    store.put("old", "1234");
    store.put("young", "5678");
    expect(value(s, "api:missing")).toBe("nil");
    expect(value(s, "api:evict:1")).toBe("7");
    expect([...store.items.keys()]).toEqual(["young"]);
    expect(value(s, "api:delete:young")).toBe("true");
    expect(value(s, "api:delete:young")).toBe("false");
    expect(store.items.size).toBe(0);
  });

  test("getPrefixMatchingKeys lists matching keys, or nil when none match", async () => {
    const { s, store } = await start({
      "api.lua": `api = {}
function api.prefix(cmd, key, p)
  local keys = getHashMap():getPrefixMatchingKeys(p)
  if keys == nil then return "nil" end
  table.sort(keys)
  return table.concat(keys, ",")
end`,
    });
    store.put("pre_a", "1");
    store.put("pre_b", "2");
    store.put("other", "3");
    expect(value(s, "api:prefix:pre_")).toBe("pre_a,pre_b");
    expect(value(s, "api:prefix:zzz")).toBe("nil");
  });

  test("scripts can enumerate objects by their storage key prefix", async () => {
    const { s } = await start({
      "api.lua": `api = {}
function api.quotas()
  local keys = getHashMap():getPrefixMatchingKeys(storageKey("quota", ""))
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k:sub(#storageKey("quota", "") + 1) end
  return table.concat(keys, ",")
end`,
    });
    value(s, "quota:new:b:1:day");
    value(s, "quota:new:a:1:day");
    value(s, "map:new:c");
    expect(value(s, "api:quotas")).toBe("a,b");
  });

  test("the command reports the get of the virtual key and keeps what is set on it", async () => {
    const { s } = await start({
      "api.lua": `api = {}
function api.cmd(cmd, key)
  local before = { cmd:getCommand(), cmd:getKey(), cmd:getKeySize(), cmd:getFlags(), cmd:getExpiryTime(),
    tostring(cmd:getData()), cmd:getDataSize(), cmd:getNoReply(), cmd:hasMultipleKeys(), tostring(cmd:getMultipleKeys()) }
  cmd:setKey("")
  cmd:setData("")
  cmd:setKey("other"); cmd:setData("abc"); cmd:setFlags(7); cmd:setExpiryTime(60); cmd:setDelta(2); cmd:setNoReply(1)
  local after = { cmd:getKey(), cmd:getData(), cmd:getDataSize(), cmd:getFlags(), cmd:getExpiryTime(), cmd:getDelta(), cmd:getNoReply() }
  return table.concat(before, ",") .. "|" .. table.concat(after, ",")
end`,
    });
    expect(value(s, "api:cmd")).toBe("get,api:cmd,7,0,0,nil,0,0,0,nil|other,abc,3,7,60,2,1");
  });

  test("writeCacheItem writes a VALUE block with the item's flags", async () => {
    const { s, store } = await start({
      "api.lua": `api = {}
function api.show(cmd, key, k)
  local item = getHashMap():get(k)
  if item == nil then return "missing" end
  cmd:writeCacheItem(item)
end`,
    });
    store.put("greeting", "hello", 42);
    expect(reply(s, "api:show:greeting")).toBe("VALUE greeting 42 5\r\nhello\r\n");
  });

  test("table.marshal/unmarshal/clone round-trip nested tables, shared references and all value types", async () => {
    const { s } = await start({
      "api.lua": `api = {}
function api.marshal()
  local shared = { 1, 2 }
  local t = { s = "str", n = 2.5, i = 7, yes = true, no = false, nested = { deep = { x = "y" } }, a = shared, b = shared, [10] = "ten" }
  t.self = t
  local u = table.unmarshal(table.marshal(t))
  local c = table.clone(t)
  local colon = table:unmarshal(table:marshal(t))
  local function check(v)
    return v.s == "str" and v.n == 2.5 and math.type(v.i) == "integer" and v.i == 7 and v.yes == true and v.no == false
      and v.nested.deep.x == "y" and v.a == v.b and v.a[2] == 2 and v[10] == "ten" and v.self == v
  end
  return tostring(check(u)) .. tostring(check(c)) .. tostring(check(colon))
end
function api.fn() return table.marshal({ f = print }) end
function api.corrupt() return table.unmarshal("not marshalled") end`,
    });
    expect(value(s, "api:marshal")).toBe("truetruetrue");
    expect(reply(s, "api:fn")).toBe("SERVER_ERROR table.marshal: cannot marshal a function value\r\n");
    expect(reply(s, "api:corrupt")).toBe("SERVER_ERROR table.unmarshal: corrupt data\r\n");
  });

  test("unmarshal reads the original's byte format (the swcounter example of 5.6)", async () => {
    const { s, store } = await start({
      "api.lua": `api = {}
function api.read(cmd, key, k)
  local c = table.unmarshal(getHashMap():get(storageKey("swcounter", k)):getData())
  return c.size .. "/" .. c.index .. "/" .. #c.values .. "/" .. c.values[1] .. c.values[2] .. c.values[3]
end`,
    });
    const parts: number[] = [0x8e];
    const str = (v: string) => parts.push(4, ...u32(v.length), ...new TextEncoder().encode(v));
    const num = (v: number) => parts.push(3, ...new Uint8Array(new Float64Array([v]).buffer));
    const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
    str("values");
    const body: number[] = [];
    for (let i = 1; i <= 3; i++) {
      body.push(3, ...new Uint8Array(new Float64Array([i]).buffer), 3, ...new Uint8Array(new Float64Array([0]).buffer));
    }
    parts.push(5, 2, ...u32(body.length), ...body);
    str("index");
    num(0);
    str("size");
    num(3);
    expect(body.length).toBe(54);
    store.set("\u0001swcounter$w1", new Uint8Array(parts), 0, 0);
    expect(value(s, "api:read:w1")).toBe("3/0/3/000");
    expect(value(s, "swcounter:add:w1:4")).toBe("SUCCESS");
    expect(value(s, "swcounter:getavg:w1")).toBe("1.3333333333333");
  });

  test("Lua 5.1 names are there: unpack, loadstring, table.getn, math.pow", async () => {
    const { s } = await start({
      "compat.lua": `compat = { f = function()
  local a, b = unpack({ 1, 2 })
  return a + b + loadstring("return 3")() + table.getn({ 1, 2, 3 }) + math.pow(2, 2)
end }`,
    });
    expect(value(s, "compat:f")).toBe("13");
  });

  test("print goes to the log at info level until setLogLevel raises the level", async () => {
    const { s, logs } = await start({
      "talk.lua": `talk = { f = function(cmd, key, level) setLogLevel(tonumber(level)); print("hello", 42) end }`,
    });
    s.handleGetKey("talk:f:1");
    expect(logs).toContain("info: hello\t42");
    logs.length = 0;
    s.handleGetKey("talk:f:2");
    expect(logs).toEqual([]);
  });
});

describe("sandbox", () => {
  test("io, os.execute/exit/remove/rename/getenv, require, dofile, loadfile, package, debug and bytecode are out of reach", async () => {
    const victim = join(scriptsDir({}), "victim.txt");
    writeFileSync(victim, "still here");
    const attempts: Record<string, string> = {
      io: `return io.open("/etc/passwd"):read("a")`,
      execute: `return os.execute("touch /tmp/cacheismo-pwned")`,
      exit: `os.exit(1)`,
      remove: `return os.remove(${JSON.stringify(victim)})`,
      rename: `return os.rename(${JSON.stringify(victim)}, "/tmp/x")`,
      getenv: `return os.getenv("HOME")`,
      tmpname: `return os.tmpname()`,
      require: `return require("os")`,
      dofile: `return dofile("/etc/passwd")`,
      loadfile: `return loadfile("/etc/passwd")`,
      package: `return package.loadlib("libc.so.6", "system")`,
      debug: `return debug.getinfo(1).source`,
      dump: `return string.dump(function() end)`,
      bytecode: `return assert(load("\\27Lua\\84\\0", "x", "b"))()`,
      bytecodeReader: `local sent = false
        return assert(load(function() if sent then return nil end sent = true return "\\27Lua" end))()`,
      stopgc: `return collectgarbage("stop")`,
    };
    const lua = `escape = {}\n${Object.entries(attempts)
      .map(([name, body]) => `function escape.${name}()\n${body}\nend`)
      .join("\n")}`;
    const { s } = await start({ "escape.lua": lua });
    for (const name of Object.keys(attempts)) {
      expect({ name, reply: reply(s, `escape:${name}`)?.slice(0, 13) }).toEqual({ name, reply: "SERVER_ERROR " });
    }
    expect(existsSync(victim)).toBe(true);
    expect(existsSync("/tmp/cacheismo-pwned")).toBe(false);
  });

  test("what stays: text chunks through load, os.time/date/clock, string, table, math, coroutine", async () => {
    const { s } = await start(
      {
        "ok.lua": `ok = { f = function()
  local co = coroutine.wrap(function() coroutine.yield(1) end)
  return load("return 40")() + co() + math.floor(os.clock() * 0) + (os.time() - 1700000000) + #os.date("!%Y") - 4 + #string.rep("a", 1) - 1 + #table.pack(1) - 1
end }`,
      },
      { now: () => 1700000001_000 },
    );
    expect(value(s, "ok:f")).toBe("42");
  });
});

describe("error handling inside scripts", () => {
  test("pcall, xpcall and coroutine.resume still catch ordinary errors", async () => {
    const { s } = await start({
      "catch.lua": `catch = { f = function()
  local a, b = pcall(error, "one", 0)
  local c, d = xpcall(function() error("two", 0) end, function(e) return "handled " .. e end)
  local e, f = coroutine.resume(coroutine.create(function() error("three", 0) end))
  return table.concat({ tostring(a), b, tostring(c), d, tostring(e), f }, ",")
end }`,
    });
    expect(value(s, "catch:f")).toBe("false,one,false,handled two,false,three");
  });
});

describe("time budget", () => {
  test("an endless loop answers SERVER_ERROR script timeout and the next call works", async () => {
    const { s } = await start({ "spin.lua": `spin = { forever = function() while true do end end, ok = function() return "fine" end }` }, { timeoutMs: 50 });
    const started = performance.now();
    expect(reply(s, "spin:forever")).toBe("SERVER_ERROR script timeout\r\n");
    expect(performance.now() - started).toBeLessThan(1000);
    expect(value(s, "spin:ok")).toBe("fine");
    expect(value(s, "quota:new:q1:1:day")).toBe("CREATED");
    expect(reply(s, "spin:forever")).toBe("SERVER_ERROR script timeout\r\n");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
  });

  test("the timeout cannot be caught by pcall, xpcall or a coroutine", async () => {
    const { s } = await start(
      {
        "sly.lua": `sly = {
  pcall = function() while true do pcall(function() while true do end end) end end,
  xpcall = function() while true do xpcall(function() while true do end end, function(e) return e end) end end,
  resume = function() while true do coroutine.resume(coroutine.create(function() while true do end end)) end end,
  wrap = function() while true do pcall(coroutine.wrap(function() while true do end end)) end end,
  ok = function() return "fine" end,
}`,
      },
      { timeoutMs: 50 },
    );
    for (const method of ["pcall", "xpcall", "resume", "wrap"]) {
      expect({ method, reply: reply(s, `sly:${method}`) }).toEqual({ method, reply: "SERVER_ERROR script timeout\r\n" });
      expect(value(s, "sly:ok")).toBe("fine");
    }
  });
});

describe("memory budget", () => {
  test("a script that builds a huge table answers SERVER_ERROR and the next call works", async () => {
    const { s } = await start(
      {
        "hog.lua": `hog = {
  table = function() local t = {} for i = 1, 1e9 do t[i] = i end end,
  string = function() return #string.rep("x", 2^30) end,
  caught = function() local ok = pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end) return tostring(ok) end,
  ok = function() local t = {} for i = 1, 1000 do t[i] = i end return #t end,
}`,
      },
      { memoryMb: 8, timeoutMs: 5000 },
    );
    expect(reply(s, "hog:table")).toBe("SERVER_ERROR script out of memory\r\n");
    expect(value(s, "hog:ok")).toBe("1000");
    expect(reply(s, "hog:string")).toBe("SERVER_ERROR script out of memory\r\n");
    expect(value(s, "hog:ok")).toBe("1000");
    expect(value(s, "hog:caught")).toBe("false");
    for (let i = 0; i < 3; i++) {
      expect(reply(s, "hog:table")).toBe("SERVER_ERROR script out of memory\r\n");
      expect(value(s, "map:new:m1")).toBe("CREATED");
    }
  });

  test("a stored item larger than the Lua heap fails the call, not the server", async () => {
    const { s, store } = await start(
      { "big.lua": `big = { size = function(cmd, key, k) return getHashMap():get(k):getDataSize() end }` },
      { memoryMb: 4 },
    );
    store.set("huge", new Uint8Array(8 * 1024 * 1024), 0, 0);
    store.set("small", new Uint8Array(100), 0, 0);
    expect(reply(s, "big:size:huge")).toBe("SERVER_ERROR script out of memory\r\n");
    expect(value(s, "big:size:small")).toBe("100");
  });
});

describe("engine failures", () => {
  test("a failure outside Lua's error handling (JS stack exhausted) restarts Lua on a new instance; objects survive", async () => {
    const { s, logs } = await start();
    value(s, "quota:new:q1:100:day");
    value(s, "quota:addandcheck:q1:40");
    // Call from ever shallower depths below the JS stack limit until a call
    // gets into the engine and the stack runs out inside it.
    let first = null as string | null;
    const dive = (): void => {
      try {
        dive();
      } catch {
        // the stack ran out further down
      }
      if (first !== null) return;
      try {
        first = reply(s, "quota:addandcheck:q1");
      } catch {
        // too deep to even enter handleGetKey
      }
    };
    dive();
    expect(first).toBe("SERVER_ERROR scripting unavailable\r\n");
    for (let i = 0; i < 100 && reply(s, "quota:reset:q1")?.startsWith("SERVER_ERROR"); i++) await Bun.sleep(20);
    expect(logs.some((l) => l.startsWith("error: scripting: Lua engine failed"))).toBe(true);
    expect(logs).toContain("info: scripting: Lua engine restarted");
    expect(value(s, "quota:addandcheck:q1:100")).toBe("QUOTA_OK");
  });

  test("after close every key is a plain key", async () => {
    const { s } = await start();
    s.close();
    expect(s.handleGetKey("map:new:m1")).toBeNull();
  });
});
