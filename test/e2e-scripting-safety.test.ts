/**
 * What a user script must not be able to do to the server, and the answers bundled objects must
 * not get wrong (security issue 12), each reproduced through a real server process with -e and a
 * scripts dir: finalizers, replies that are not VALUE blocks, patched shared methods, key bytes
 * above 0x7f, non-finite and negative numbers, objects past -I, an empty map value.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RawClient } from "./helpers/raw-client.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

/** A reply that never comes must fail the test, not hang it; a normal one takes milliseconds. */
const REPLY_DEADLINE_MS = 10_000;
const TEST_TIMEOUT_MS = 60_000;

function scriptsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "cacheismo-safety-"));
  for (const [name, code] of Object.entries(files)) writeFileSync(join(dir, name), code);
  return dir;
}

/** Request bytes: each character of `text` is one byte, so "\xe9" sends the byte 0xe9. */
function bytes(text: string): Uint8Array {
  return Buffer.from(text, "latin1");
}

/** Sends one request and reads its reply up to `ending`; the reply is latin1 (one character per byte). */
async function ask(client: RawClient, request: string, ending: string | RegExp = /(?:END|ERROR[^\r\n]*)\r\n$/): Promise<string> {
  client.send(bytes(request));
  const done = typeof ending === "string" ? (t: string) => t.endsWith(ending) : (t: string) => ending.test(t);
  return client.readUntil(done, REPLY_DEADLINE_MS);
}

/** The reply a one-key `get` of `key` gets when its payload is `payload`. */
function valueReply(key: string, payload: string): string {
  return `VALUE ${key} 0 ${payload.length}\r\n${payload}\r\nEND\r\n`;
}

/** Peak resident memory of a process, in bytes (Linux). */
function peakRssBytes(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Asks until `get key` answers `payload` (the reload has happened) or the deadline passes. */
async function waitForValue(client: RawClient, key: string, payload: string): Promise<void> {
  const deadline = Date.now() + REPLY_DEADLINE_MS;
  for (;;) {
    const reply = await ask(client, `get ${key}\r\n`);
    if (reply === valueReply(key, payload)) return;
    if (Date.now() > deadline) throw new Error(`${key} never answered ${payload}; last reply ${JSON.stringify(reply)}`);
    await Bun.sleep(100);
  }
}

describe("finalizers", () => {
  const LOOPING_FINALIZER = "{ __gc = function() while true do end end }";

  test(
    "a script cannot set a __gc finalizer, so one that loops cannot hang the server",
    async () => {
      const dir = scriptsDir({
        "fin.lua": `fin = {}
function fin.loop()
  local doomed = setmetatable({}, ${LOOPING_FINALIZER})
  doomed = nil
  collectgarbage()
  return "collected"
end`,
      });
      await using server = await serverWith(["-d", dir]);
      const reply = await ask(server.client, "get fin:loop\r\n");
      expect(reply).toBe("SERVER_ERROR fin.lua:3: setmetatable: __gc finalizers are not allowed\r\n");
      expect(await ask(server.client, "set plain 0 0 2\r\nok\r\n", "\r\n")).toBe("STORED\r\n");
      expect(await ask(server.client, "get plain\r\n")).toBe(valueReply("plain", "ok"));
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "SIGHUP cannot be hung by a finalizer: closing the old scripts runs none of theirs",
    async () => {
      const dir = scriptsDir({
        "fin.lua": `fin = {}
function fin.keep()
  kept = setmetatable({}, ${LOOPING_FINALIZER})
  return "kept"
end`,
      });
      await using server = await serverWith(["-d", dir]);
      await ask(server.client, "get fin:keep\r\n");
      writeFileSync(join(dir, "after.lua"), `after = { ping = function() return "pong" end }`);
      server.proc.kill("SIGHUP");
      await waitForValue(server.client, "after:ping", "pong");
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a finalizer cannot allocate past --script-memory-mb when the scripts are reloaded",
    async () => {
      const dir = scriptsDir({
        "fin.lua": `fin = {}
function fin.keep()
  kept = setmetatable({}, { __gc = function() hoard = string.rep("x", 256 * 1024 * 1024) end })
  return "kept"
end`,
      });
      await using server = await serverWith(["-d", dir, "--script-memory-mb", "8"]);
      await ask(server.client, "get fin:keep\r\n");
      const before = peakRssBytes(server.proc.pid);
      writeFileSync(join(dir, "after.lua"), `after = { ping = function() return "pong" end }`);
      server.proc.kill("SIGHUP");
      await waitForValue(server.client, "after:ping", "pong");
      // A new Lua state costs a few MB; the finalizer's string would be 256 MB.
      expect(peakRssBytes(server.proc.pid) - before).toBeLessThan(128 * 1024 * 1024);
    },
    TEST_TIMEOUT_MS,
  );
});

describe("replies and shared state", () => {
  let server: SpawnedServer;
  /** Each test talks over a connection of its own, so that one that fails leaves nothing unread for the next. */
  const clients: RawClient[] = [];
  async function connect(): Promise<RawClient> {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  }
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });

  beforeAll(async () => {
    const dir = scriptsDir({
      "quiet.lua": `quiet = {}
function quiet.empty() end`,
      "forge.lua": `forge = {}
function forge.stored(cmd) cmd:writeString("STORED\\r\\n") end
function forge.smuggle(cmd, key)
  cmd:writeString("VALUE " .. key .. " 0 1\\r\\nx\\r\\nEND\\r\\nVALUE plain 0 4\\r\\nfake\\r\\n")
end
function forge.short(cmd, key) cmd:writeString("VALUE " .. key .. " 0 9\\r\\nx\\r\\n") end`,
      "patch.lua": `patch = {}
function patch.command(cmd)
  cmd.__index.writeString = function(self) self.output = "VALUE patched 0 7\\r\\npatched\\r\\n" return 0 end
  return "patched"
end
function patch.hashmap()
  getHashMap().get = function() return nil end
  return "patched"
end
function patch.item(cmd)
  cmd:newCacheItem().__index.getData = function() return "patched" end
  return "patched"
end`,
      "probe.lua": `probe = {}
function probe.roundtrip(cmd, key, k, v)
  cmd:setKey(k)
  cmd:setData(v)
  getHashMap():put(cmd:newCacheItem())
  local item = getHashMap():get(k)
  if item == nil then return "missing" end
  return item:getData()
end`,
      "big.lua": `big = {}
function big.new(cmd, key, k, n)
  return executeNew(cmd, key, "big", k, function() return { s = string.rep("x", tonumber(n)) } end)
end
function big.size(cmd, key, k)
  return executeReadOnly(cmd, key, "big", k, function(o) return #o.s end)
end`,
    });
    server = await spawnCacheismo(["-m", "16", "-I", "4k", "-e", "-d", dir]);
    expect(await ask(await connect(), "set plain 0 0 4\r\nreal\r\n", "\r\n")).toBe("STORED\r\n");
  }, TEST_TIMEOUT_MS);
  afterAll(async () => {
    await server.kill();
  });

  test("a handler that answers nothing is a miss: the other keys and END still arrive", async () => {
    const client = await connect();
    expect(await ask(client, "get quiet:empty:x plain\r\n")).toBe(valueReply("plain", "real"));
    expect(await ask(client, "get quiet:empty:x\r\n")).toBe("END\r\n");
  }, TEST_TIMEOUT_MS);

  test("a handler cannot forge reply lines: a reply that is not whole VALUE blocks fails the key", async () => {
    const client = await connect();
    const failure = "SERVER_ERROR the handler wrote something other than VALUE blocks\r\n";
    expect(await ask(client, "get forge:stored\r\n", "\r\n")).toBe(failure);
    expect(await ask(client, "get forge:smuggle plain\r\n", "\r\n")).toBe(failure);
    expect(await ask(client, "get forge:short\r\n", "\r\n")).toBe(failure);
    expect(await ask(client, "get plain\r\n")).toBe(valueReply("plain", "real"));
  }, TEST_TIMEOUT_MS);

  test("scripts cannot patch the Command, hash map or cache item methods other objects use", async () => {
    const client = await connect();
    expect(await ask(client, "get patch:command\r\n")).toStartWith("SERVER_ERROR ");
    expect(await ask(client, "get patch:item\r\n")).toStartWith("SERVER_ERROR ");
    // The field lands on this call's own hash map handle, which nobody else sees.
    expect(await ask(client, "get patch:hashmap\r\n")).toBe(valueReply("patch:hashmap", "patched"));
    expect(await ask(client, "get map:new:patchprobe\r\n")).toBe(valueReply("map:new:patchprobe", "CREATED"));
    expect(await ask(client, "get map:put:patchprobe:a:1\r\n")).toBe(valueReply("map:put:patchprobe:a:1", "SUCCESS"));
    expect(await ask(client, "get probe:roundtrip:item:real\r\n")).toBe(valueReply("probe:roundtrip:item:real", "real"));
  }, TEST_TIMEOUT_MS);

  test("key bytes above 0x7f reach Lua and come back unchanged, in the VALUE line and in set members", async () => {
    const client = await connect();
    expect(await ask(client, "get set:new:\xe9\r\n")).toBe(valueReply("set:new:\xe9", "CREATED"));
    expect(await ask(client, "get set:put:\xe9:\xff\x80\r\n")).toBe(valueReply("set:put:\xe9:\xff\x80", "SUCCESS"));
    expect(await ask(client, "get set:exist:\xe9:\xff\x80\r\n")).toBe(valueReply("set:exist:\xe9:\xff\x80", "EXISTS"));
    expect(await ask(client, "get set:getall:\xe9\r\n")).toBe(valueReply("set:getall:\xe9", "\xff\x80\r\n"));
  }, TEST_TIMEOUT_MS);

  test("quota amounts must be finite, decimal and not negative; limits finite and decimal", async () => {
    const client = await connect();
    expect(await ask(client, "get quota:new:qn:10:day\r\n")).toBe(valueReply("quota:new:qn:10:day", "CREATED"));
    for (const amount of ["-1e999", "-1", "0x5", "1e999"]) {
      expect(await ask(client, `get quota:addandcheck:qn:${amount}\r\n`, "\r\n")).toBe(`SERVER_ERROR invalid amount: ${amount}\r\n`);
    }
    expect(await ask(client, "get quota:addandcheck:qn:10\r\n")).toBe(valueReply("quota:addandcheck:qn:10", "QUOTA_OK"));
    expect(await ask(client, "get quota:addandcheck:qn:1\r\n")).toBe(valueReply("quota:addandcheck:qn:1", "QUOTA_EXCEEDED"));
    for (const limit of ["1e999", "0x10"]) {
      const key = `quota:new:qn:${limit}:day`;
      expect(await ask(client, `get ${key}\r\n`)).toBe(valueReply(key, "NOT_CREATED"));
    }
  }, TEST_TIMEOUT_MS);

  test("swcounter values and window sizes must be finite and decimal; the average stays a number", async () => {
    const client = await connect();
    expect(await ask(client, "get swcounter:new:cn:2\r\n")).toBe(valueReply("swcounter:new:cn:2", "CREATED"));
    for (const v of ["1e999", "-1e999", "0x10"]) {
      expect(await ask(client, `get swcounter:add:cn:${v}\r\n`, "\r\n")).toBe(`SERVER_ERROR invalid number: ${v}\r\n`);
    }
    expect(await ask(client, "get swcounter:add:cn:3\r\n")).toBe(valueReply("swcounter:add:cn:3", "SUCCESS"));
    expect(await ask(client, "get swcounter:getavg:cn\r\n")).toBe(valueReply("swcounter:getavg:cn", "1.5"));
    expect(await ask(client, "get swcounter:new:cn2:0x2\r\n")).toBe(valueReply("swcounter:new:cn2:0x2", "NOT_CREATED"));
  }, TEST_TIMEOUT_MS);

  test("an update past -I answers a size error and keeps the object as it was", async () => {
    const client = await connect();
    expect(await ask(client, "get map:new:grow\r\n")).toBe(valueReply("map:new:grow", "CREATED"));
    const value = "v".repeat(200);
    let stored = 0;
    let failure = "";
    for (let i = 0; i < 40 && failure === ""; i++) {
      const key = `map:put:grow:f${i}:${value}`;
      const reply = await ask(client, `get ${key}\r\n`, /(?:END|ERROR[^\r\n]*)\r\n$/);
      if (reply === valueReply(key, "SUCCESS")) stored++;
      else failure = reply;
    }
    expect(failure).toMatch(/^SERVER_ERROR object too large for cache\b.*\r\n$/);
    expect(stored).toBeGreaterThan(0);
    expect(await ask(client, "get map:count:grow\r\n")).toBe(valueReply("map:count:grow", String(stored)));
    expect(await ask(client, "get map:get:grow:f0\r\n")).toBe(valueReply("map:get:grow:f0", `f0 : ${value}`));
  }, TEST_TIMEOUT_MS);

  test("a new object past -I answers a size error and keeps the object it would replace", async () => {
    const client = await connect();
    expect(await ask(client, "get big:new:b:10\r\n")).toBe(valueReply("big:new:b:10", "CREATED"));
    expect(await ask(client, "get big:new:b:8000\r\n", "\r\n")).toMatch(/^SERVER_ERROR object too large for cache\b/);
    expect(await ask(client, "get big:size:b\r\n")).toBe(valueReply("big:size:b", "10"));
  }, TEST_TIMEOUT_MS);

  test("map:put with an empty value after the last colon stores the empty value", async () => {
    const client = await connect();
    expect(await ask(client, "get map:new:ev\r\n")).toBe(valueReply("map:new:ev", "CREATED"));
    expect(await ask(client, "get map:put:ev:f:v\r\n")).toBe(valueReply("map:put:ev:f:v", "SUCCESS"));
    expect(await ask(client, "get map:put:ev:f:\r\n")).toBe(valueReply("map:put:ev:f:", "SUCCESS"));
    expect(await ask(client, "get map:get:ev:f\r\n")).toBe(valueReply("map:get:ev:f", "f : "));
    expect(await ask(client, "get map:count:ev\r\n")).toBe(valueReply("map:count:ev", "1"));
  }, TEST_TIMEOUT_MS);
});

/**
 * A server of its own, with a connected client; `await using` kills both. SIGKILL: a server hung
 * in Lua never runs its SIGTERM handler.
 */
async function serverWith(args: string[]): Promise<SpawnedServer & { client: RawClient; [Symbol.asyncDispose](): Promise<void> }> {
  const server = await spawnCacheismo(["-m", "16", "-e", ...args]);
  const client = await RawClient.connect(server.port);
  return {
    ...server,
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      server.proc.kill("SIGKILL");
      await server.proc.exited;
    },
  };
}
