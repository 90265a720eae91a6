// The cluster primitives of Lua scripts (reference 5.5), in-process: newConsistent rings agree with
// the server's ketama routing; command:getFromServer / getInParallel fetch from other servers (an
// in-process cacheismo and a real memcached) without blocking the server, bounded by the peer
// timeout; waits and object updates from concurrent requests do not interfere.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess, TCPSocketListener } from "bun";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { type InProcessServer, startServer } from "../src/index.ts";
import { createScripting, type Scripting, type ScriptingOptions } from "../src/scripting/engine.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { freePort, waitForPort } from "./helpers/spawn.ts";
import { MapStore } from "./helpers/map-store.ts";



const decoder = new TextDecoder();
const dirs: string[] = [];
const engines: Scripting[] = [];
const servers: InProcessServer[] = [];
const clients: RawClient[] = [];

/** A directory holding one script, test.lua. */
function scriptDir(lua: string): string {
  const dir = mkdtempSync(join(tmpdir(), "cacheismo-cluster-"));
  dirs.push(dir);
  writeFileSync(join(dir, "test.lua"), lua);
  return dir;
}

async function engine(lua: string, options: Partial<ScriptingOptions> = {}): Promise<Scripting> {
  const s = await createScripting({ store: new MapStore(), scriptsDir: scriptDir(lua), timeoutMs: 100, memoryMb: 16, peerTimeoutMs: 300, ...options });
  engines.push(s);
  return s;
}

/** The reply to a virtual key as text, waiting for it when the handler waits. */
async function reply(s: Scripting, key: string): Promise<string> {
  const bytes = s.handleGetKey(key);
  if (bytes === null) throw new Error(`${key} is not a virtual key`);
  return decoder.decode(await bytes);
}

/** The payload of the VALUE block answering `key`. */
async function value(s: Scripting, key: string): Promise<string> {
  const text = await reply(s, key);
  const m = /^VALUE (\S+) 0 (\d+)\r\n([\s\S]*)\r\n$/.exec(text);
  if (m === null || m[1] !== key) throw new Error(`not a VALUE block for ${key}: ${JSON.stringify(text)}`);
  return m[3];
}

async function connect(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  clients.push(c);
  return c;
}

/** A TCP server that accepts connections and never answers. */
function silentServer(): TCPSocketListener {
  return Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
}

// Two servers to fetch from: an in-process cacheismo and a real memcached.
let peer: InProcessServer;
let memcached: Subprocess;
let memcachedPort = 0;
let silent: TCPSocketListener;
const deadServer = `127.0.0.1:${freePort()}`;

beforeAll(async () => {
  peer = await startServer({ port: 0, listen: "127.0.0.1" });
  memcachedPort = freePort();
  memcached = Bun.spawn(["memcached", "-u", "nobody", "-l", "127.0.0.1", "-p", String(memcachedPort), "-U", "0", "-m", "16"], { stdout: "ignore", stderr: "ignore" });
  await waitForPort(memcachedPort, 5000);
  silent = silentServer();
  const c = await connect(peer.port);
  expect(await c.request("set a 5 0 3\r\none\r\nset b 0 0 3\r\ntwo\r\n", (t) => t === "STORED\r\nSTORED\r\n")).toBe("STORED\r\nSTORED\r\n");
  const m = await connect(memcachedPort);
  expect(await m.request("set a 0 0 5\r\nm-one\r\nset c 0 0 7\r\nm-three\r\n", (t) => t === "STORED\r\nSTORED\r\n")).toBe("STORED\r\nSTORED\r\n");
});

afterEach(() => {
  for (const s of engines.splice(0)) s.close();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.stop()));
  await peer.stop();
  silent.stop(true);
  memcached.kill();
  await memcached.exited;
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const peerAddress = (): string => `127.0.0.1:${peer.port}`;
const memcachedAddress = (): string => `127.0.0.1:${memcachedPort}`;
const silentAddress = (): string => `127.0.0.1:${silent.port}`;

// Virtual-key arguments are split at ':', so scripts get addresses from these globals.
function addresses(): string {
  return `PEER, MEMCACHED, SILENT, DEAD = "${peerAddress()}", "${memcachedAddress()}", "${silentAddress()}", "${deadServer}"\n`;
}

describe("newConsistent", () => {
  const LIST = "127.0.0.1:22140, 127.0.0.1:22141 127.0.0.1:22142";
  const ringScript = `
    local ring = newConsistent("${LIST}")
    local fromTable = newConsistent({ "127.0.0.1:22140", "127.0.0.1:22141", "127.0.0.1:22142" })
    ring_ = {}
    function ring_.find(cmd, key, k) return ring:findServerForKey(k) .. " " .. fromTable:findServerForKey(k) end
    function ring_.count(cmd) return ring:getServerCount() end
    function ring_.available(cmd, key, host, port) return ring:isServerAvailable(host .. ":" .. port) end
    function ring_.set(cmd, key, flag, host, port) return ring:setServerAvailable(tonumber(flag), host .. ":" .. port) end
    function ring_.bad(cmd, key, list)
      local r, message = newConsistent(list)
      return tostring(r) .. " " .. message
    end
  `;

  test("findServerForKey agrees with the server's ketama routing for the same list, given as a string or a table", async () => {
    const s = await engine(ringScript);
    const continuum = new Continuum(parseServerList(LIST), "md5");
    const owners = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const owner = continuum.ownerOf(`key${i}`);
      const expected = `${owner.host}:${owner.port}`;
      owners.add(expected);
      expect(await value(s, `ring_:find:key${i}`)).toBe(`${expected} ${expected}`);
    }
    expect(owners.size).toBe(3);
  });

  test("setServerAvailable(0, name) moves that server's keys to the others; isServerAvailable follows; 1 restores", async () => {
    const s = await engine(ringScript);
    expect(await value(s, "ring_:count:x")).toBe("3");
    expect(await value(s, "ring_:available:127.0.0.1:22141")).toBe("1");
    expect(await value(s, "ring_:available:127.0.0.1:9")).toBe("0");
    const before = await Promise.all(Array.from({ length: 100 }, (_, i) => value(s, `ring_:find:k${i}`)));
    expect(await value(s, "ring_:set:0:127.0.0.1:22141")).toBe("1");
    expect(await value(s, "ring_:available:127.0.0.1:22141")).toBe("0");
    expect(await value(s, "ring_:count:x")).toBe("3");
    for (let i = 0; i < 100; i++) {
      const now = (await value(s, `ring_:find:k${i}`)).split(" ")[0];
      const was = before[i].split(" ")[0];
      if (was === "127.0.0.1:22141") expect(now).not.toBe(was);
      else expect(now).toBe(was); // consistent hashing: only the removed server's keys move
    }
    expect(await value(s, "ring_:set:1:127.0.0.1:22141")).toBe("1");
    expect((await value(s, "ring_:find:k1")).split(" ")[0]).toBe(before[1].split(" ")[0]);
    expect(await value(s, "ring_:set:0:127.0.0.1:9")).toBe("0");
  });

  test("a malformed list gives nil and a message", async () => {
    const s = await engine(ringScript);
    expect(await value(s, "ring_:bad:nonsense")).toBe('nil server list: "nonsense" is not host:port[:weight]');
  });

  test("with no list it rings the cluster's --peers with the server's --hash; getClusterServers and getSelfServer describe the cluster", async () => {
    const peers = "127.0.0.1:7001, 127.0.0.1:7002:2 127.0.0.1:7003";
    const s = await engine(
      `c = {}
       function c.find(cmd, key, k) return newConsistent():findServerForKey(k) end
       function c.info(cmd) return table.concat(getClusterServers(), ",") .. " self=" .. getSelfServer() end`,
      { hash: "fnv1a_64", cluster: { peers, self: "127.0.0.1:7002" } },
    );
    expect(await value(s, "c:info:x")).toBe("127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 self=127.0.0.1:7002");
    const continuum = new Continuum(parseServerList(peers), "fnv1a_64");
    for (let i = 0; i < 100; i++) {
      const owner = continuum.ownerOf(`k${i}`);
      expect(await value(s, `c:find:k${i}`)).toBe(`${owner.host}:${owner.port}`);
    }
  });

  test("without --cluster, newConsistent() needs a list and getClusterServers is empty", async () => {
    const s = await engine(`c = {}
      function c.info(cmd) return #getClusterServers() .. " " .. tostring(getSelfServer()) end
      function c.ring(cmd) local r = newConsistent() return r end`);
    expect(await value(s, "c:info:x")).toBe("0 nil");
    expect(await reply(s, "c:ring:x")).toBe("SERVER_ERROR test.lua:3: newConsistent: no server list given, and not in cluster mode\r\n");
  });
});

describe("getFromServer and getInParallel", () => {
  const fetchScript = () =>
    addresses() +
    `w = {}
     function w.get(cmd, key, server, k)
       local v = cmd:getFromServer(_G[server], k)
       if v == nil then return "nil" end
       return "=" .. v
     end
     function w.par(cmd)
       local r = cmd:getInParallel({ [PEER] = { "a", "b", "missing" }, [MEMCACHED] = "a", [DEAD] = { "a" }, [SILENT] = {} })
       local out = {}
       for server, values in pairs(r) do
         local name = server == PEER and "peer" or server == MEMCACHED and "memcached" or server == DEAD and "dead" or "silent"
         local n = 0
         for k, v in pairs(values) do out[#out + 1] = name .. "." .. k .. "=" .. v; n = n + 1 end
         if n == 0 then out[#out + 1] = name .. ":empty" end
       end
       table.sort(out)
       return table.concat(out, " ")
     end
     function w.local_(cmd) return "local" end
    `;

  test("getFromServer returns the value on a hit and nil on a miss, from cacheismo and memcached; only waiting handlers answer asynchronously", async () => {
    const s = await engine(fetchScript());
    const pending = s.handleGetKey("w:get:PEER:a");
    expect(pending).toBeInstanceOf(Promise);
    expect(decoder.decode(await pending!)).toBe("VALUE w:get:PEER:a 0 4\r\n=one\r\n");
    expect(await value(s, "w:get:PEER:missing")).toBe("nil");
    expect(await value(s, "w:get:MEMCACHED:c")).toBe("=m-three");
    // A handler that never waits keeps the synchronous path.
    const direct = s.handleGetKey("w:local_:x");
    expect(direct).toBeInstanceOf(Uint8Array);
    expect(decoder.decode(direct as Uint8Array)).toBe("VALUE w:local_:x 0 5\r\nlocal\r\n");
  });

  test("getInParallel asks every server at once and returns a table per server, missing and failed keys absent", async () => {
    const s = await engine(fetchScript());
    const started = performance.now();
    expect(await value(s, "w:par:x")).toBe("dead:empty memcached.a=m-one peer.a=one peer.b=two silent:empty");
    expect(performance.now() - started).toBeLessThan(250); // the silent server was asked for no key
  });

  test("a server with nothing listening gives nil at once", async () => {
    const s = await engine(fetchScript());
    const started = performance.now();
    expect(await value(s, "w:get:DEAD:a")).toBe("nil");
    expect(performance.now() - started).toBeLessThan(250);
  });

  test("a server that never answers gives nil within the peer timeout, and the wait is not charged to the script's time budget", async () => {
    const s = await engine(fetchScript(), { peerTimeoutMs: 300, timeoutMs: 20 });
    const started = performance.now();
    expect(await value(s, "w:get:SILENT:a")).toBe("nil");
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1000);
  });

  test("a bad server address or key is the script's error", async () => {
    const s = await engine(`w = {}
      function w.addr(cmd) local v = cmd:getFromServer("localhost", "a") return v end
      function w.key(cmd) local v = cmd:getFromServer("127.0.0.1:1", "has space") return v end
      function w.spec(cmd) local v = cmd:getInParallel({ ["127.0.0.1:1"] = { 5 } }) return v end`);
    expect(await reply(s, "w:addr:x")).toBe('SERVER_ERROR test.lua:2: getFromServer: invalid server address "localhost" (expected host:port)\r\n');
    expect(await reply(s, "w:key:x")).toStartWith("SERVER_ERROR test.lua:3: getFromServer: keys must be strings of 1 to 250 bytes");
    expect(await reply(s, "w:spec:x")).toStartWith("SERVER_ERROR test.lua:4: getInParallel: keys must be strings");
  });
});

describe("waiting without blocking", () => {
  test("while a script waits on a silent server, requests on other connections are served", async () => {
    const server = await startServer({ port: 0, virtualKeys: true, scriptsDir: scriptDir(`${addresses()}
      w = {}
      function w.slow(cmd) return tostring(cmd:getFromServer(SILENT, "a")) end`), peerTimeoutMs: 3000 }); // a Lua wait gets half: 1.5 s
    servers.push(server);
    const waiting = await connect(server.port);
    const other = await connect(server.port);
    const started = performance.now();
    waiting.send("get w:slow:x\r\n");
    const slowReply = waiting.readUntil((t) => t.endsWith("END\r\n"), 5000);
    await Bun.sleep(50);
    expect(await other.request("set k 0 0 2\r\nhi\r\nget k\r\n", "END\r\n")).toBe("STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
    expect(await other.request("get set:new:s\r\nget set:put:s:m\r\nget set:count:s\r\n", (t) => t.split("END\r\n").length === 4)).toBe(
      "VALUE set:new:s 0 7\r\nCREATED\r\nEND\r\nVALUE set:put:s:m 0 7\r\nSUCCESS\r\nEND\r\nVALUE set:count:s 0 1\r\n1\r\nEND\r\n",
    );
    expect(performance.now() - started).toBeLessThan(1000); // served while the slow key still waits
    expect(await slowReply).toBe("VALUE w:slow:x 0 3\r\nnil\r\nEND\r\n");
    expect(performance.now() - started).toBeGreaterThanOrEqual(1400);
  });

  test("a multi-get of waiting virtual keys and plain keys answers in key order, and the connection's next request after it", async () => {
    const server = await startServer({ port: 0, virtualKeys: true, scriptsDir: scriptDir(`${addresses()}
      w = {}
      function w.get(cmd, key, k) return cmd:getFromServer(PEER, k) or "nil" end`) });
    servers.push(server);
    const c = await connect(server.port);
    expect(await c.request("set plain 0 0 1\r\np\r\n")).toBe("STORED\r\n");
    expect(await c.request("get w:get:b plain w:get:a w:get:missing\r\nget plain\r\n", (t) => t.split("END\r\n").length === 3)).toBe(
      "VALUE w:get:b 0 3\r\ntwo\r\nVALUE plain 0 1\r\np\r\nVALUE w:get:a 0 3\r\none\r\nVALUE w:get:missing 0 3\r\nnil\r\nEND\r\n" + "VALUE plain 0 1\r\np\r\nEND\r\n",
    );
  });

  test("concurrent waits do not interfere: 50 keys wait at once, then each adds to one object atomically, and every update lands", async () => {
    const s = await engine(`${addresses()}
      tally = {}
      local function add(t, v) t.n = t.n + 1; t.sum = t.sum + #v; return t.n end
      function tally.new(cmd, key, k) return executeNew(cmd, key, "tally", k, function() return { n = 0, sum = 0 } end) end
      function tally.add(cmd, key, k, i)
        local v = cmd:getFromServer(PEER, i % 2 == 0 and "a" or "b") -- "one" / "two"
        return executeReadWrite(cmd, key, "tally", k, add, v .. i)
      end
      function tally.get(cmd, key, k) return executeReadOnly(cmd, key, "tally", k, function(t) return t.n .. " " .. t.sum end) end`);
    expect(await value(s, "tally:new:t")).toBe("CREATED");
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => value(s, `tally:add:t:${i}`)));
    expect(replies.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const sum = Array.from({ length: 50 }, (_, i) => 3 + String(i).length).reduce((a, b) => a + b, 0);
    expect(await value(s, "tally:get:t")).toBe(`50 ${sum}`);
  });

  test("a wait inside an object update is an error, so read-modify-write stays atomic", async () => {
    const s = await engine(`${addresses()}
      o = {}
      function o.new(cmd, key, k) return executeNew(cmd, key, "o", k, function() return { v = "" } end) end
      function o.bad(cmd, key, k)
        return executeReadWrite(cmd, key, "o", k, function(obj) obj.v = cmd:getFromServer(PEER, "a") return obj.v end)
      end
      function o.good(cmd, key, k)
        local v = cmd:getFromServer(PEER, "a")
        return executeReadWrite(cmd, key, "o", k, function(obj) obj.v = v return v end)
      end`);
    expect(await value(s, "o:new:x")).toBe("CREATED");
    expect(await reply(s, "o:bad:x")).toBe(
      "SERVER_ERROR test.lua:6: getFromServer cannot wait inside an object update (executeReadWrite/ReadOnly/New): fetch first, then update\r\n",
    );
    expect(await value(s, "o:good:x")).toBe("one");
  });

  test("a wait from a coroutine the script made, or a bare coroutine.yield in a handler, fails that key only", async () => {
    const s = await engine(`${addresses()}
      c = {}
      function c.wrapped(cmd) return coroutine.wrap(function() return cmd:getFromServer(PEER, "a") end)() end
      function c.yield(cmd) coroutine.yield("hello") return "after" end
      function c.own(cmd)
        local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
        return co(1) + co(10) + #cmd:getFromServer(PEER, "a")
      end`);
    expect(await reply(s, "c:wrapped:x")).toStartWith("SERVER_ERROR test.lua:4: getFromServer can only wait in the coroutine of its own request");
    expect(await reply(s, "c:yield:x")).toBe("SERVER_ERROR coroutine.yield outside a coroutine of the script's own\r\n");
    expect(await value(s, "c:own:x")).toBe("25"); // 2 + 20 + #"one"
  });

  test("a script that keeps waiting is still stopped by its budget of Lua time", async () => {
    const s = await engine(`${addresses()}
      loop = {}
      function loop.forever(cmd)
        local n = 0
        while true do
          for i = 1, 20000 do n = n + i end
          cmd:getFromServer(DEAD, "a")
        end
      end`, { timeoutMs: 50 });
    const started = performance.now();
    expect(await reply(s, "loop:forever:x")).toBe("SERVER_ERROR script timeout\r\n");
    expect(performance.now() - started).toBeLessThan(3000);
  });

  test("a reload while a key waits lets it finish on the old scripts; new keys use the new ones", async () => {
    const dir = scriptDir(`${addresses()}
      v = {}
      function v.get(cmd) return "old " .. cmd:getFromServer(SILENT, "a") end
      function v.now(cmd) return "old" end`);
    const s = await createScripting({ store: new MapStore(), scriptsDir: dir, timeoutMs: 100, memoryMb: 16, peerTimeoutMs: 300 });
    engines.push(s);
    const waiting = reply(s, "v:get:x");
    writeFileSync(join(dir, "test.lua"), `v = {} function v.now(cmd) return "new" end`);
    expect(await s.reload()).toEqual([]);
    expect(await value(s, "v:now:x")).toBe("new");
    expect(await waiting).toStartWith("SERVER_ERROR test.lua:4: attempt to concatenate a nil value"); // the old script, after the timeout
  });

  test("closing the engine while a key waits answers it with SERVER_ERROR scripting unavailable", async () => {
    const s = await engine(`${addresses()} w = {} function w.slow(cmd) return cmd:getFromServer(SILENT, "a") end`, { peerTimeoutMs: 2000 });
    const waiting = reply(s, "w:slow:x");
    await Bun.sleep(20);
    s.close();
    expect(await waiting).toBe("SERVER_ERROR scripting unavailable\r\n");
  });
});
