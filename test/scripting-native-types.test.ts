/**
 * The bundled set, map and quota served without Lua (native-objects.ts): from the request bytes
 * straight into the output (Scripting.serveNative) with the replies Lua gives, per type while
 * user scripts leave that type as it was, and with a decoded cache that another thread's or
 * the clock's changes never leave stale.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { latin1Bytes, latin1String } from "../src/latin1.ts";
import { OutputBuffer } from "../src/protocol/output.ts";
import { createScripting, type Scripting } from "../src/scripting/engine.ts";
import { StoreObjectAccess } from "../src/store/object-access.ts";
import { Store } from "../src/store/store.ts";
import { WRAP_ALL_BUNDLED } from "./helpers/lua-scripts.ts";
import { rng } from "./helpers/rng.ts";

const open: Scripting[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true });
});


function newStore(): Store {
  return new Store({ memoryBytes: 16 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
}

async function engine(store: Store, scripts: Record<string, string> = {}): Promise<Scripting> {
  let scriptsDir: string | undefined;
  if (Object.keys(scripts).length > 0) {
    scriptsDir = mkdtempSync(join(tmpdir(), "native-types-"));
    dirs.push(scriptsDir);
    for (const [name, code] of Object.entries(scripts)) writeFileSync(join(scriptsDir, name), code);
  }
  const s = await createScripting({ store: new StoreObjectAccess(store), scriptsDir, timeoutMs: 5000, memoryMb: 64 });
  open.push(s);
  return s;
}

/** What serveNative writes for `get <key>` (the key in the middle of a request line), or null when it leaves the key alone. */
function served(s: Scripting, key: string): string | null {
  const line = latin1Bytes(`get ${key}\r\n`);
  const out = new OutputBuffer(16);
  out.putAscii("prefix");
  const result = s.serveNative(line, 4, key.length, out);
  if (result < 0) {
    expect(out.length).toBe(6);
    return null;
  }
  return latin1String(out.bytes, 6, out.length);
}

/** handleGetKey's reply as latin1 text. */
function viaKey(s: Scripting, key: string): string | null {
  const reply = s.handleGetKey(key);
  if (reply instanceof Promise) throw new Error(`${key}: no immediate reply`);
  return reply === null ? null : latin1String(reply);
}

/** serveNative's reply, else handleGetKey's: what a `get` of the key answers. */
function get(s: Scripting, key: string): string | null {
  return served(s, key) ?? viaKey(s, key);
}

describe("served from the request bytes", () => {
  test("the common calls answer what Lua answers, byte for byte, and the rest are left to the string path", async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100_000);
    const random = rng(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
    const native = await engine(newStore());
    const lua = await engine(newStore(), { "wrap.lua": WRAP_ALL_BUNDLED });
    const members = ["a", "b", "\xe9t\xe9", "x:y", ""];
    const objects = ["s", "t", "", "missing"];
    const keys = (): string[] => {
      const o = pick(objects);
      const m = pick(members);
      return [
        `set:put:${o}:${m}`,
        `set:delete:${o}:${m}`,
        `set:exist:${o}:${m}`,
        `set:exists:${o}:${m}:extra`,
        `set:count:${o}`,
        `set:exist:${o}`,
        `set:exist:${o}:`,
        `map:put:${o}:${m}:${pick(["1", "v", "", "\xff"])}`,
        `map:put:${o}:${m}:`,
        `map:put:${o}:${m}`,
        `map:get:${o}:${m}`,
        `map:delete:${o}:${m}`,
        `map:count:${o}`,
        `map:get:${o}`,
        `quota:addandcheck:${o}`,
        `quota:addandcheck:${o}:${pick(["0", "3", "2.5", "x", "1e3", "999999999999999"])}`,
        `set:getall:${o}`,
        `set:union:${o}:t`,
        `map:getall:${o}`,
        "set:put",
        "set:put:",
        "set:nosuch:s:a",
      ];
    };
    for (const s of [native, lua]) {
      for (const key of ["set:new:s", "set:new:t", "set:new:", "map:new:s", "map:new:t", "map:new:", "quota:new:s:40:day", "quota:new:t:40:day"]) viaKey(s, key);
    }
    let servedCount = 0;
    for (let step = 0; step < 3000; step++) {
      const key = pick(keys());
      const fromBytes = served(native, key);
      if (fromBytes !== null) servedCount++;
      expect(fromBytes ?? viaKey(native, key), `${key} (seed ${seed})`).toBe(viaKey(lua, key));
    }
    expect(servedCount).toBeGreaterThan(1000);
    // With every method wrapped, none is served without Lua.
    expect(served(lua, "set:exist:s:a")).toBeNull();
  }, 60_000);

  test("listings, new and reset are left to the string path", async () => {
    const s = await engine(newStore());
    expect(served(s, "set:new:s")).toBeNull();
    expect(viaKey(s, "set:new:s")).toBe("VALUE set:new:s 0 7\r\nCREATED\r\n");
    expect(served(s, "set:put:s:a")).toBe("VALUE set:put:s:a 0 7\r\nSUCCESS\r\n");
    expect(served(s, "set:getall:s")).toBeNull();
    expect(served(s, "quota:reset:q")).toBeNull();
    expect(served(s, "swcounter:get:c")).toBeNull();
    expect(served(s, "plain")).toBeNull();
  });
});

describe("per type: native while user scripts leave the bundled type as it was", () => {
  test("a script that replaces set.put sends every set call to Lua; map and quota stay native", async () => {
    const s = await engine(newStore(), { "mine.lua": `set.put = function(cmd, key) return "mine" end` });
    viaKey(s, "set:new:s");
    viaKey(s, "map:new:m");
    expect(get(s, "set:put:s:a")).toBe("VALUE set:put:s:a 0 4\r\nmine\r\n");
    expect(served(s, "set:exist:s:a")).toBeNull();
    expect(viaKey(s, "set:exist:s:a")).toBe("VALUE set:exist:s:a 0 9\r\nNOT_FOUND\r\n");
    expect(served(s, "map:put:m:f:v")).toBe("VALUE map:put:m:f:v 0 7\r\nSUCCESS\r\n");
    expect(served(s, "quota:addandcheck:q")).toBe("VALUE quota:addandcheck:q 0 16\r\nERROR_CACHE_MISS\r\n");
  });

  test("a script that defines a type of its own or adds a method keeps every bundled type native", async () => {
    const s = await engine(newStore(), { "own.lua": `counter = { get = function() return 1 end }\nfunction set.size() return 2 end` });
    viaKey(s, "set:new:s");
    expect(served(s, "set:put:s:a")).toBe("VALUE set:put:s:a 0 7\r\nSUCCESS\r\n");
    expect(served(s, "map:count:m")).toBe("VALUE map:count:m 0 16\r\nERROR_CACHE_MISS\r\n");
    expect(get(s, "counter:get:x")).toBe("VALUE counter:get:x 0 1\r\n1\r\n");
    expect(get(s, "set:size:s")).toBe("VALUE set:size:s 0 1\r\n2\r\n");
  });

  test("replacing the whole type table sends the type to Lua", async () => {
    const s = await engine(newStore(), { "map.lua": `map = { get = function() return "other" end }` });
    expect(served(s, "map:get:m:f")).toBeNull();
    expect(viaKey(s, "map:get:m:f")).toBe("VALUE map:get:m:f 0 5\r\nother\r\n");
    expect(served(s, "set:count:s")).toBe("VALUE set:count:s 0 16\r\nERROR_CACHE_MISS\r\n");
  });

  test("a call that replaces a bundled method sends that type to Lua from then on", async () => {
    const s = await engine(newStore(), {
      "late.lua": `late = {}
function late.patch() local get = map.get map.get = function(...) return "patched" end return "done" end`,
    });
    viaKey(s, "map:new:m");
    expect(served(s, "map:get:m:f")).toBe("VALUE map:get:m:f 0 9\r\nNOT_FOUND\r\n");
    expect(viaKey(s, "late:patch")).toBe("VALUE late:patch 0 4\r\ndone\r\n");
    expect(served(s, "map:get:m:f")).toBeNull();
    expect(viaKey(s, "map:get:m:f")).toBe("VALUE map:get:m:f 0 7\r\npatched\r\n");
    expect(served(s, "set:count:s")).not.toBeNull();
  });

  test("a call that fails after replacing a method still counts", async () => {
    const s = await engine(newStore(), { "late.lua": `late = {}\nfunction late.patch() set.exist = nil error("after") end` });
    expect(viaKey(s, "late:patch")).toStartWith("SERVER_ERROR ");
    expect(served(s, "set:exist:s:a")).toBeNull();
  });
});

describe("the decoded cache stays true to the store", () => {
  test("another engine's (thread's) changes, made natively or in Lua, are seen at once", async () => {
    const store = newStore();
    const a = await engine(store);
    const b = await engine(store);
    const lua = await engine(store, { "wrap.lua": WRAP_ALL_BUNDLED });
    viaKey(a, "set:new:s");
    expect(served(a, "set:put:s:x")).toContain("SUCCESS");
    expect(served(b, "set:exist:s:x")).toContain("EXISTS");
    expect(served(b, "set:exist:s:x")).toContain("EXISTS");
    expect(served(a, "set:delete:s:x")).toContain("SUCCESS");
    expect(served(b, "set:exist:s:x")).toContain("NOT_FOUND");
    expect(viaKey(lua, "set:put:s:x")).toContain("SUCCESS");
    expect(served(b, "set:exist:s:x")).toContain("EXISTS");
    expect(served(b, "set:count:s")).toBe("VALUE set:count:s 0 1\r\n1\r\n");
    store.lock.hold(() => store.flushAll());
    expect(served(b, "set:exist:s:x")).toContain("ERROR_CACHE_MISS");
  });

  test("an unchanged store is not asked again, unless its eviction policy counts every read (gdsf)", async () => {
    for (const everyReadCounts of [false, true]) {
      const store = newStore();
      let reads = 0;
      const access = new (class extends StoreObjectAccess {
        override readLog(key: string, version: number, length: number) {
          reads++;
          return super.readLog(key, version, length);
        }
      })(store, everyReadCounts);
      const s = await createScripting({ store: access, timeoutMs: 5000, memoryMb: 64 });
      open.push(s);
      viaKey(s, "set:new:s");
      served(s, "set:put:s:x");
      reads = 0;
      for (let i = 0; i < 10; i++) expect(served(s, "set:exist:s:x")).toContain("EXISTS");
      expect(reads).toBe(everyReadCounts ? 10 : 0);
    }
  });

  test("an object that expires by the clock alone is not served from the cache", async () => {
    const store = newStore();
    const access = new StoreObjectAccess(store);
    const s = await engine(store);
    viaKey(s, "set:new:s");
    served(s, "set:put:s:x");
    // The same object, stored again to expire in 10 seconds (as a script's getHashMap():put could).
    access.set("\x01set$s", access.get("\x01set$s")!.data, 0, 10);
    expect(served(s, "set:exist:s:x")).toContain("EXISTS");
    expect(served(s, "set:exist:s:x")).toContain("EXISTS");
    store.clock.now += 10;
    expect(served(s, "set:exist:s:x")).toContain("ERROR_CACHE_MISS");
  });
});
