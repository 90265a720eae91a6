/**
 * Objects kept as append logs in the real arena store (core.lua, native-objects.ts,
 * src/store/object-log.ts): a change is appended, not re-encoded; two engines on one store (as
 * two server threads, each with its own Lua state and decoded objects) each read what the other
 * appended; logs grow, compact and get evicted without any engine ever reading a wrong object.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createScripting, type Scripting } from "../src/scripting/engine.ts";
import type { LogRead } from "../src/scripting/store-access.ts";
import { StoreObjectAccess } from "../src/store/object-access.ts";
import { Store, StoreMode } from "../src/store/store.ts";
import { WRAP_ALL_BUNDLED } from "./helpers/lua-scripts.ts";
import { rng } from "./helpers/rng.ts";

const decoder = new TextDecoder();
const open: Scripting[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true });
});

/** Counts the bytes each readLog hands to Lua. */
class CountingAccess extends StoreObjectAccess {
  bytesRead = 0;
  override readLog(key: string, version: number, length: number): LogRead | null {
    const read = super.readLog(key, version, length);
    if (read !== null) this.bytesRead += read.bytes.length;
    return read;
  }
}

async function engine(store: Store, scripts: Record<string, string> = {}): Promise<{ s: Scripting; access: CountingAccess }> {
  let scriptsDir: string | undefined;
  if (Object.keys(scripts).length > 0) {
    scriptsDir = mkdtempSync(join(tmpdir(), "object-logs-"));
    dirs.push(scriptsDir);
    for (const [name, code] of Object.entries(scripts)) writeFileSync(join(scriptsDir, name), code);
  }
  const access = new CountingAccess(store);
  const s = await createScripting({ store: access, scriptsDir, timeoutMs: 5000, memoryMb: 64 });
  open.push(s);
  return { s, access };
}

/** The payload of the key's VALUE block; throws on any other reply. */
function value(s: Scripting, key: string): string {
  const bytes = s.handleGetKey(key);
  if (!(bytes instanceof Uint8Array)) throw new Error(`${key}: no immediate reply`);
  const text = decoder.decode(bytes);
  const match = /^VALUE \S+ 0 (\d+)\r\n/.exec(text);
  if (match === null) throw new Error(`${key}: ${JSON.stringify(text.slice(0, 200))}`);
  return text.slice(match[0].length, match[0].length + Number(match[1]));
}

const sortedLines = (members: Iterable<string>): string => [...members].sort().map((m) => `${m}\r\n`).join("");

describe("object logs", () => {
  test("a put on a large set reads and writes only the change, also in another engine (thread) on the store", async () => {
    const store = new Store({ memoryBytes: 64 * 1024 * 1024, maxItemBytes: 8 * 1024 * 1024 });
    const a = await engine(store);
    const b = await engine(store);
    value(a.s, "set:new:big");
    for (let i = 0; i < 10_000; i++) value(a.s, `set:put:big:m${i}`);
    expect(value(b.s, "set:count:big")).toBe("10000");
    const itemBytes = store.bytesUsed;
    a.access.bytesRead = 0;
    b.access.bytesRead = 0;
    // Each state's put is a tail of a few dozen bytes for the other; the object stays in place
    // or grows by copying in the store, never decoded again.
    for (let i = 0; i < 200; i++) {
      value(a.s, `set:put:big:a${i}`);
      value(b.s, `set:put:big:b${i}`);
    }
    expect(a.access.bytesRead + b.access.bytesRead).toBeLessThan(400 * 64);
    expect(value(a.s, "set:count:big")).toBe("10400");
    expect(value(b.s, "set:exist:big:a199")).toBe("EXISTS");
    expect(store.bytesUsed).toBeLessThan(itemBytes * 2);
    store.checkInvariants();
  }, 30_000);

  test("deletes are appended until the dead outnumber the live, then the object is stored compacted", async () => {
    const store = new Store({ memoryBytes: 16 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
    const { s } = await engine(store);
    value(s, "set:new:s");
    for (let i = 0; i < 1000; i++) value(s, `set:put:s:m${i}`);
    const full = store.bytesUsed;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 1000; i += 2) value(s, `set:delete:s:m${i}`);
      for (let i = 0; i < 1000; i += 2) value(s, `set:put:s:m${i}`);
    }
    for (let i = 0; i < 900; i++) value(s, `set:delete:s:m${i}`);
    expect(value(s, "set:count:s")).toBe("100");
    expect(value(s, "set:getall:s")).toBe(sortedLines(Array.from({ length: 100 }, (_, i) => `m${900 + i}`)));
    // 20,000 changes went through a log that never held much more than the object itself.
    expect(store.bytesUsed).toBeLessThan(full * 3);
    store.checkInvariants();
  }, 30_000);

  test("quota and map updates append to their logs and read back right", async () => {
    const store = new Store({ memoryBytes: 16 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
    const a = await engine(store);
    const b = await engine(store);
    value(a.s, "quota:new:q:250:day");
    value(a.s, "map:new:m");
    let ok = 0;
    for (let i = 0; i < 300; i++) {
      if (value(i % 2 === 0 ? a.s : b.s, "quota:addandcheck:q") === "QUOTA_OK") ok++;
      value(i % 3 === 0 ? a.s : b.s, `map:put:m:f${i % 7}:v${i}`);
    }
    expect(ok).toBe(250);
    expect(value(b.s, "map:count:m")).toBe("7");
    expect(value(a.s, "map:get:m:f6")).toBe("f6 : v293");
    expect(value(a.s, "quota:reset:q")).toBe("QUOTA_OK");
    expect(value(b.s, "quota:addandcheck:q:250")).toBe("QUOTA_OK");
    expect(value(a.s, "quota:addandcheck:q")).toBe("QUOTA_EXCEEDED");
  });

  test("an update past the item size limit answers SERVER_ERROR and keeps the object as it was", async () => {
    const store = new Store({ memoryBytes: 16 * 1024 * 1024, maxItemBytes: 4096 });
    const { s } = await engine(store);
    value(s, "set:new:s");
    let i = 0;
    let reply = "";
    for (; i < 1000; i++) {
      const bytes = s.handleGetKey(`set:put:s:member${i}`) as Uint8Array;
      reply = decoder.decode(bytes);
      if (!reply.includes("SUCCESS")) break;
    }
    expect(reply).toStartWith("SERVER_ERROR object too large for cache");
    expect(value(s, "set:count:s")).toBe(String(i));
    expect(value(s, `set:exist:s:member${i}`)).toBe("NOT_FOUND");
    expect(value(s, `set:exist:s:member${i - 1}`)).toBe("EXISTS");
  });

  test("two engines (threads, one of them all Lua), random puts and deletes, evictions under a small arena: every read matches the model or misses", async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100_000);
    const random = rng(seed);
    const pick = (n: number) => Math.floor(random() * n);
    const store = new Store({ memoryBytes: 1024 * 1024, maxItemBytes: 256 * 1024 });
    const states = [(await engine(store)).s, (await engine(store, { "wrap.lua": WRAP_ALL_BUNDLED })).s];
    // Enough objects and client items that objects not used for a while reach the LRU tail.
    const names = Array.from({ length: 40 }, (_, i) => `s${i}`);
    const model = new Map<string, Set<string>>();
    const filler = new Uint8Array(40_000);
    const fillKey = new Uint8Array(8);
    let evicted = 0;
    for (let step = 0; step < 10_000; step++) {
      const s = states[pick(2)];
      const name = names[pick(names.length)];
      const members = model.get(name);
      const r = random();
      if (r < 0.1) {
        fillKey.set(new TextEncoder().encode(`fill${pick(999)}`.padEnd(8)));
        store.store(StoreMode.Set, fillKey, 0, 8, 0, 0, filler, 0, filler.length, 0);
      } else if (members === undefined) {
        expect(value(s, `set:new:${name}`)).toBe("CREATED");
        model.set(name, new Set());
      } else if (r < 0.9) {
        const member = `e${pick(400)}`;
        const put = random() < 0.65;
        const reply = value(s, `set:${put ? "put" : "delete"}:${name}:${member}`);
        if (reply === "ERROR_CACHE_MISS") {
          model.delete(name);
          evicted++;
          continue;
        }
        expect(reply, `seed ${seed}`).toBe("SUCCESS");
        if (put) members.add(member);
        else members.delete(member);
      } else {
        const all = value(s, `set:getall:${name}`);
        if (all === "ERROR_CACHE_MISS") {
          model.delete(name);
          evicted++;
          continue;
        }
        expect(all, `seed ${seed}`).toBe(sortedLines(members));
        expect(value(s, `set:count:${name}`), `seed ${seed}`).toBe(String(members.size));
      }
      if (step % 1000 === 0) store.checkInvariants();
    }
    expect(evicted, `seed ${seed}`).toBeGreaterThan(0);
    store.checkInvariants();
  }, 60_000);
});

describe("native and Lua paths on one object", () => {
  test("set and map methods served without Lua and in Lua (a user script wrapping every bundled method) keep one object", async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100_000);
    const random = rng(seed);
    const pick = (n: number) => Math.floor(random() * n);
    const store = new Store({ memoryBytes: 16 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
    const native = (await engine(store)).s;
    const lua = (await engine(store, { "wrap.lua": WRAP_ALL_BUNDLED })).s;
    value(native, "set:new:s");
    value(lua, "map:new:m");
    value(lua, "set:new:t");
    const other = new Set<string>();
    for (let i = 0; i < 150; i += 3) {
      value(i % 2 === 0 ? lua : native, `set:put:t:e${i}`);
      other.add(`e${i}`);
    }
    const members = new Set<string>();
    const fields = new Map<string, string>();
    for (let step = 0; step < 6000; step++) {
      const s = random() < 0.5 ? native : lua;
      const member = `e${pick(150)}`;
      const r = random();
      if (r < 0.35) {
        const put = random() < 0.55;
        expect(value(s, `set:${put ? "put" : "delete"}:s:${member}`)).toBe("SUCCESS");
        if (put) members.add(member);
        else members.delete(member);
      } else if (r < 0.7) {
        const v = random() < 0.8 ? `v${pick(20)}` : undefined;
        expect(value(s, v === undefined ? `map:delete:m:${member}` : `map:put:m:${member}:${v}`)).toBe("SUCCESS");
        if (v === undefined) fields.delete(member);
        else fields.set(member, v);
      } else if (r < 0.8) {
        expect(value(s, `set:exist:s:${member}`), `seed ${seed}`).toBe(members.has(member) ? "EXISTS" : "NOT_FOUND");
        expect(value(s, `map:get:m:${member}`), `seed ${seed}`).toBe(fields.has(member) ? `${member} : ${fields.get(member)}` : "NOT_FOUND");
      } else if (r < 0.9) {
        expect(value(s, "set:count:s"), `seed ${seed}`).toBe(String(members.size));
        expect(value(s, "map:count:m"), `seed ${seed}`).toBe(String(fields.size));
      } else {
        expect(value(s, "set:getall:s"), `seed ${seed}`).toBe(sortedLines(members));
        expect(value(s, "set:union:s:t"), `seed ${seed}`).toBe(sortedLines(new Set([...members, ...other])));
        expect(value(s, "set:intersection:t:s"), `seed ${seed}`).toBe(sortedLines([...other].filter((m) => members.has(m))));
        expect(value(s, "map:getkeys:m"), `seed ${seed}`).toBe(sortedLines(fields.keys()));
        const sorted = [...fields.keys()].sort();
        expect(value(s, "map:getall:m"), `seed ${seed}`).toBe(sorted.map((f) => `${f} : ${fields.get(f)}\r\n`).join(""));
      }
    }
    store.checkInvariants();
  }, 60_000);
});

describe("quota on both paths", () => {
  test("addandcheck counts every amount once whichever path serves it (whole amounts without Lua, fractional ones in Lua)", async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100_000);
    const random = rng(seed);
    const store = new Store({ memoryBytes: 16 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
    const native = (await engine(store)).s;
    const lua = (await engine(store, { "wrap.lua": WRAP_ALL_BUNDLED })).s;
    value(native, "quota:new:q:500:day");
    let count = 0;
    for (let step = 0; step < 2000; step++) {
      const s = random() < 0.5 ? native : lua;
      const amount = random() < 0.2 ? undefined : random() < 0.8 ? Math.floor(random() * 5) : 0.5;
      const expected = count + (amount ?? 1) > 500 ? "QUOTA_EXCEEDED" : "QUOTA_OK";
      if (expected === "QUOTA_OK") count += amount ?? 1;
      expect(value(s, amount === undefined ? "quota:addandcheck:q" : `quota:addandcheck:q:${amount}`), `seed ${seed}`).toBe(expected);
    }
    expect(value(lua, "quota:reset:q")).toBe("QUOTA_OK");
    expect(value(native, "quota:addandcheck:q:500")).toBe("QUOTA_OK");
    expect(value(native, "quota:addandcheck:q")).toBe("QUOTA_EXCEEDED");
  }, 30_000);
});

describe("the original's names for objects", () => {
  test("getHashMap():get('set$' .. key) reads the object executeNew stored, with its changes", async () => {
    const store = new Store({ memoryBytes: 16 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
    const { s } = await engine(store, {
      // The original set.lua's union: objects read through the hash map under "set$<key>".
      "orig.lua": `orig = {}
function orig.union(cmd, key, k1, k2)
  local i1, i2 = getHashMap():get("set$" .. k1), getHashMap():get("set$" .. k2)
  if i1 == nil or i2 == nil then return writeStringAsValue(cmd, key, "ERROR_CACHE_MISS") end
  local s1, s2 = table.unmarshal(i1:getData()), table.unmarshal(i2:getData())
  local all = {}
  for k in pairs(s1) do all[#all + 1] = k end
  for k in pairs(s2) do if s1[k] == nil then all[#all + 1] = k end end
  table.sort(all)
  return writeStringAsValue(cmd, key, i1:getKey() .. "=" .. table.concat(all, ","))
end`,
    });
    value(s, "set:new:a");
    value(s, "set:new:b");
    for (const m of ["x", "y", "z"]) value(s, `set:put:a:${m}`);
    value(s, "set:delete:a:y");
    value(s, "set:put:b:w");
    expect(value(s, "orig:union:a:b")).toBe("set$a=w,x,z");
    expect(value(s, "orig:union:a:missing")).toBe("ERROR_CACHE_MISS");
  });

  test("user scripts update their own types through executeUpdate and count them with executeCount", async () => {
    const store = new Store({ memoryBytes: 16 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
    const { s } = await engine(store, {
      "tags.lua": `tags = {}
function tags.new(cmd, key, k) return executeNew(cmd, key, "tags", k, function() return {} end) end
function tags.add(cmd, key, k, tag)
  return executeUpdate(cmd, key, "tags", k, function(t, tag)
    local n = (t[tag] or 0) + 1
    return n, tag, n
  end, tag)
end
function tags.count(cmd, key, k) return executeCount(cmd, key, "tags", k) end`,
    });
    value(s, "tags:new:t");
    expect(value(s, "tags:add:t:a")).toBe("1");
    expect(value(s, "tags:add:t:a")).toBe("2");
    expect(value(s, "tags:add:t:b")).toBe("1");
    expect(value(s, "tags:count:t")).toBe("2");
  });
});
