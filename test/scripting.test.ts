// Virtual keys and the four bundled object types (reference sections 4 and 6,
// acceptance rows 27-43), driven in-process through handleGetKey.
import { afterEach, describe, expect, test } from "bun:test";
import { createScripting, type Scripting, type ScriptingOptions } from "../src/scripting/engine.ts";
import { immediateReply } from "./helpers/immediate.ts";
import { MapStore } from "./helpers/map-store.ts";



const decoder = new TextDecoder();
const open: Scripting[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

async function start(options: Partial<ScriptingOptions> = {}): Promise<{ s: Scripting; store: MapStore }> {
  const store = new MapStore();
  const s = await createScripting({ store, timeoutMs: 100, memoryMb: 16, ...options });
  open.push(s);
  return { s, store };
}

/** The reply block as text, or null for a plain key. */
function reply(s: Scripting, key: string): string | null {
  const bytes = immediateReply(s, key);
  return bytes === null ? null : decoder.decode(bytes);
}

/** The payload of a well-formed `VALUE <key> 0 <n>` block (n counted in bytes). */
function value(s: Scripting, key: string): string {
  const bytes = immediateReply(s, key);
  if (bytes === null) throw new Error(`${key} is not a virtual key`);
  const text = decoder.decode(bytes);
  const header = `VALUE ${key} 0 `;
  if (!text.startsWith(header)) throw new Error(`not a VALUE block: ${JSON.stringify(text)}`);
  const eol = text.indexOf("\r\n");
  const length = Number(text.slice(header.length, eol));
  const headerBytes = new TextEncoder().encode(text.slice(0, eol + 2)).length;
  expect(bytes.length).toBe(headerBytes + length + 2);
  expect(text.endsWith("\r\n")).toBe(true);
  return decoder.decode(bytes.subarray(headerBytes, headerBytes + length));
}

function lines(payload: string): string[] {
  expect(payload === "" || payload.endsWith("\r\n")).toBe(true);
  return payload === "" ? [] : payload.slice(0, -2).split("\r\n");
}

describe("virtual key dispatch", () => {
  test("a reply is a complete VALUE block for the full virtual key", async () => {
    const { s } = await start();
    expect(reply(s, "map:new:m1")).toBe("VALUE map:new:m1 0 7\r\nCREATED\r\n");
  });

  test("keys that name no object type or no method are plain keys (null)", async () => {
    const { s } = await start();
    value(s, "set:new:s1");
    for (const key of ["user:123", "plain", "map", "map:", ":new:x", "set:nosuch:s1:x", "set:New:s1"]) {
      expect(s.handleGetKey(key)).toBeNull();
    }
  });

  test("globals that are not object types are plain keys: core, os, print, string, table", async () => {
    const { s, store } = await start();
    value(s, "map:new:m1");
    for (const key of ["core:flush_all", "core:version", "os:exit", "os:execute:ls", "print:x", "string:rep:x:9", "table:concat", "getHashMap:x", "_G:map"]) {
      expect(s.handleGetKey(key)).toBeNull();
    }
    expect(store.items.size).toBe(1);
  });

  test("a missing object answers ERROR_CACHE_MISS", async () => {
    const { s } = await start();
    expect(reply(s, "map:get:nosuch:a")).toBe("VALUE map:get:nosuch:a 0 16\r\nERROR_CACHE_MISS\r\n");
  });

  test("missing arguments answer SERVER_ERROR, never silence", async () => {
    const { s } = await start();
    expect(reply(s, "map:get")).toBe("SERVER_ERROR missing argument: object key\r\n");
    value(s, "map:new:m1");
    expect(reply(s, "map:get:m1")).toBe("SERVER_ERROR missing argument: field\r\n");
    expect(reply(s, "map:new")).toBe("SERVER_ERROR missing argument: object key\r\n");
  });

  test("empty segments are kept and a trailing ':' adds nothing", async () => {
    const { s } = await start();
    value(s, "map:new:m1");
    expect(value(s, "map:put:m1::empty-field")).toBe("SUCCESS");
    expect(value(s, "map:get:m1::")).toBe(" : empty-field");
    expect(reply(s, "map:get:m1:")).toBe("SERVER_ERROR missing argument: field\r\n");
    expect(value(s, "map:put:m1:a:1:")).toBe("SUCCESS");
    expect(value(s, "map:get:m1:a")).toBe("a : 1");
  });

  test("objects are stored under \\x01<type>$<key> in the objects namespace, flags 0, never expiring", async () => {
    const { s, store } = await start();
    value(s, "map:new:m1");
    expect([...store.items.keys()]).toEqual(["\u0001map$m1"]);
    const item = store.items.get("\u0001map$m1")!;
    expect([...item.data]).toEqual([0x8e]);
    expect(item.flags).toBe(0);
    expect(item.exptime).toBe(0);
    expect(s.handleGetKey("map$m1")).toBeNull();
  });

  test("an object removed from the store (eviction) is a cache miss afterwards", async () => {
    const { s, store } = await start();
    value(s, "set:new:s1");
    value(s, "set:put:s1:x");
    expect(value(s, "set:exist:s1:x")).toBe("EXISTS");
    store.items.clear();
    expect(value(s, "set:exist:s1:x")).toBe("ERROR_CACHE_MISS");
  });

  test("an object replaced in the store behind the engine's back is read afresh", async () => {
    const { s, store } = await start();
    value(s, "set:new:s1");
    value(s, "set:put:s1:x");
    const withX = store.items.get("\u0001set$s1")!.data;
    value(s, "set:new:s1");
    value(s, "set:put:s1:y");
    expect(value(s, "set:getall:s1")).toBe("y\r\n");
    store.set("\u0001set$s1", withX, 0, 0);
    expect(value(s, "set:getall:s1")).toBe("x\r\n");
  });

  test("an object that cannot be stored answers SERVER_ERROR out of memory", async () => {
    const { s, store } = await start();
    value(s, "map:new:m1");
    store.refuseSets = true;
    expect(reply(s, "map:put:m1:a:1")).toBe("SERVER_ERROR out of memory storing object\r\n");
    expect(reply(s, "map:new:m2")).toBe("SERVER_ERROR out of memory storing object\r\n");
    store.refuseSets = false;
    expect(value(s, "map:getall:m1")).toBe("");
  });

  test("reading an object does not store it again", async () => {
    const { s, store } = await start();
    value(s, "quota:new:q1:1:day");
    value(s, "map:new:m1");
    let sets = 0;
    const set = store.set.bind(store);
    store.set = (k, d, f, e) => (sets++, set(k, d, f, e));
    value(s, "map:get:m1:a");
    value(s, "map:count:m1");
    value(s, "quota:addandcheck:q1");
    expect(sets).toBe(1);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
    expect(sets).toBe(1);
  });
});

describe("map", () => {
  test("new, put and get answer CREATED, SUCCESS and 'field : value' or NOT_FOUND", async () => {
    const { s } = await start();
    expect(value(s, "map:new:m1")).toBe("CREATED");
    expect(value(s, "map:put:m1:a:1")).toBe("SUCCESS");
    expect(value(s, "map:get:m1:a")).toBe("a : 1");
    expect(value(s, "map:get:m1:zz")).toBe("NOT_FOUND");
  });

  test("new replaces an existing map with an empty one", async () => {
    const { s } = await start();
    value(s, "map:new:m1");
    value(s, "map:put:m1:a:1");
    expect(value(s, "map:new:m1")).toBe("CREATED");
    expect(value(s, "map:count:m1")).toBe("0");
  });

  test("count is the number of fields", async () => {
    const { s } = await start();
    value(s, "map:new:m1");
    value(s, "map:put:m1:a:1");
    value(s, "map:put:m1:b:2");
    value(s, "map:put:m1:a:3");
    expect(value(s, "map:count:m1")).toBe("2");
  });

  test("getkeys, getvalues and getall list every field with CRLF", async () => {
    const { s } = await start();
    value(s, "map:new:m1");
    value(s, "map:put:m1:b:2");
    value(s, "map:put:m1:a:1");
    expect(lines(value(s, "map:getkeys:m1")).sort()).toEqual(["a", "b"]);
    expect(lines(value(s, "map:getvalues:m1")).sort()).toEqual(["1", "2"]);
    expect(value(s, "map:getall:m1")).toBe("a : 1\r\nb : 2\r\n");
  });

  test("an empty map lists as a zero-length value", async () => {
    const { s } = await start();
    value(s, "map:new:m1");
    expect(reply(s, "map:getall:m1")).toBe("VALUE map:getall:m1 0 0\r\n\r\n");
    expect(value(s, "map:getkeys:m1")).toBe("");
    expect(value(s, "map:getvalues:m1")).toBe("");
  });

  test("delete removes a field and answers SUCCESS even when it is absent", async () => {
    const { s } = await start();
    value(s, "map:new:m1");
    value(s, "map:put:m1:a:1");
    value(s, "map:put:m1:b:2");
    expect(value(s, "map:delete:m1:a")).toBe("SUCCESS");
    expect(value(s, "map:delete:m1:a")).toBe("SUCCESS");
    expect(value(s, "map:getall:m1")).toBe("b : 2\r\n");
  });

  test("put without a value deletes the field", async () => {
    const { s } = await start();
    value(s, "map:new:m1");
    value(s, "map:put:m1:a:1");
    expect(value(s, "map:put:m1:a")).toBe("SUCCESS");
    expect(value(s, "map:get:m1:a")).toBe("NOT_FOUND");
  });

  test("a listing longer than the original's 1024-byte limit (40 fields of 30 bytes) arrives whole", async () => {
    const { s } = await start();
    value(s, "map:new:big");
    const expected: string[] = [];
    for (let i = 0; i < 40; i++) {
      const field = `f${String(i).padStart(2, "0")}`;
      const v = String(i).padStart(30, "v");
      value(s, `map:put:big:${field}:${v}`);
      expected.push(`${field} : ${v}`);
    }
    const payload = value(s, "map:getall:big");
    expect(payload.length).toBe(40 * 38);
    expect(lines(payload)).toEqual(expected);
  });
});

describe("set", () => {
  test("new, put, exist, delete answer CREATED, SUCCESS, EXISTS/NOT_FOUND, SUCCESS", async () => {
    const { s } = await start();
    expect(value(s, "set:new:s1")).toBe("CREATED");
    expect(value(s, "set:put:s1:x")).toBe("SUCCESS");
    expect(value(s, "set:exist:s1:x")).toBe("EXISTS");
    expect(value(s, "set:exist:s1:q")).toBe("NOT_FOUND");
    expect(value(s, "set:delete:s1:x")).toBe("SUCCESS");
    expect(value(s, "set:exist:s1:x")).toBe("NOT_FOUND");
  });

  test("exists is answered like exist", async () => {
    const { s } = await start();
    value(s, "set:new:s1");
    value(s, "set:put:s1:x");
    expect(value(s, "set:exists:s1:x")).toBe("EXISTS");
    expect(value(s, "set:exists:s1:y")).toBe("NOT_FOUND");
  });

  test("count is the number of elements", async () => {
    const { s } = await start();
    value(s, "set:new:s1");
    value(s, "set:put:s1:x");
    value(s, "set:put:s1:y");
    value(s, "set:put:s1:x");
    expect(value(s, "set:count:s1")).toBe("2");
  });

  test("getall lists the elements with CRLF", async () => {
    const { s } = await start();
    value(s, "set:new:s1");
    value(s, "set:put:s1:y");
    value(s, "set:put:s1:x");
    expect(lines(value(s, "set:getall:s1")).sort()).toEqual(["x", "y"]);
  });

  test("union lists the distinct elements of both sets", async () => {
    const { s } = await start();
    for (const key of ["set:new:s1", "set:put:s1:x", "set:put:s1:y", "set:new:s2", "set:put:s2:y", "set:put:s2:z"]) value(s, key);
    expect(lines(value(s, "set:union:s1:s2")).sort()).toEqual(["x", "y", "z"]);
  });

  test("intersection lists the common elements", async () => {
    const { s } = await start();
    for (const key of ["set:new:s1", "set:put:s1:x", "set:put:s1:y", "set:new:s2", "set:put:s2:y", "set:put:s2:z"]) value(s, key);
    expect(value(s, "set:intersection:s1:s2")).toBe("y\r\n");
    value(s, "set:new:s3");
    expect(value(s, "set:intersection:s1:s3")).toBe("");
  });

  test("union and intersection with a missing set answer ERROR_CACHE_MISS", async () => {
    const { s } = await start();
    value(s, "set:new:s1");
    expect(value(s, "set:union:s1:nosuch")).toBe("ERROR_CACHE_MISS");
    expect(value(s, "set:union:nosuch:s1")).toBe("ERROR_CACHE_MISS");
    expect(value(s, "set:intersection:s1:nosuch")).toBe("ERROR_CACHE_MISS");
    expect(reply(s, "set:union:s1")).toBe("SERVER_ERROR missing argument: second object key\r\n");
  });

  test("a multi-get of two getall keys gives two blocks and leaves plain keys to the server", async () => {
    const { s } = await start();
    for (const key of ["set:new:s1", "set:put:s1:x", "set:new:s2", "set:put:s2:y"]) value(s, key);
    const replies = ["set:getall:s1", "set:getall:s2", "plainmissing"].map((k) => reply(s, k));
    expect(replies).toEqual(["VALUE set:getall:s1 0 3\r\nx\r\n\r\n", "VALUE set:getall:s2 0 3\r\ny\r\n\r\n", null]);
  });
});

describe("quota", () => {
  test("addandcheck allows up to the limit, reset starts again, :n adds n", async () => {
    const { s } = await start();
    expect(value(s, "quota:new:q1:2:day")).toBe("CREATED");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
    expect(value(s, "quota:reset:q1")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1:2")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
  });

  test("an exceeded addandcheck does not count", async () => {
    const { s } = await start();
    value(s, "quota:new:q1:3:hour");
    expect(value(s, "quota:addandcheck:q1:2")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1:2")).toBe("QUOTA_EXCEEDED");
    expect(value(s, "quota:addandcheck:q1:1")).toBe("QUOTA_OK");
  });

  test("amounts may be fractional", async () => {
    const { s } = await start();
    value(s, "quota:new:q1:1:day");
    expect(value(s, "quota:addandcheck:q1:0.5")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1:0.5")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1:0.5")).toBe("QUOTA_EXCEEDED");
  });

  test("an unknown period or a non-numeric limit answers NOT_CREATED and keeps the old quota", async () => {
    const { s } = await start();
    expect(value(s, "quota:new:q1:2:week")).toBe("NOT_CREATED");
    expect(value(s, "quota:new:q1:lots:day")).toBe("NOT_CREATED");
    expect(value(s, "quota:new:q1:2")).toBe("NOT_CREATED");
    expect(value(s, "quota:addandcheck:q1")).toBe("ERROR_CACHE_MISS");
    value(s, "quota:new:q1:1:month");
    expect(value(s, "quota:new:q1:5:fortnight")).toBe("NOT_CREATED");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
  });

  test("a non-numeric amount answers SERVER_ERROR", async () => {
    const { s } = await start();
    value(s, "quota:new:q1:2:day");
    expect(reply(s, "quota:addandcheck:q1:many")).toBe("SERVER_ERROR invalid amount: many\r\n");
  });

  test("an hourly window starts again at the next full hour (UTC)", async () => {
    let now = Date.UTC(2024, 4, 10, 13, 59, 58);
    const { s } = await start({ now: () => now });
    value(s, "quota:new:q1:1:hour");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
    now += 1000;
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
    now = Date.UTC(2024, 4, 10, 14, 0, 0);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
    now = Date.UTC(2024, 4, 10, 14, 59, 59);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
  });

  test("a daily window starts again at midnight UTC", async () => {
    let now = Date.UTC(2024, 1, 28, 23, 30);
    const { s } = await start({ now: () => now });
    value(s, "quota:new:q1:1:day");
    value(s, "quota:addandcheck:q1");
    now = Date.UTC(2024, 1, 29, 0, 0, 0) - 1000;
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
    now = Date.UTC(2024, 1, 29, 0, 0, 0);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
  });

  test("a monthly window starts again on the 1st, across a year end", async () => {
    let now = Date.UTC(2023, 11, 31, 23, 59, 59);
    const { s } = await start({ now: () => now });
    value(s, "quota:new:q1:1:month");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
    now = Date.UTC(2024, 0, 1, 0, 0, 0);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
    now = Date.UTC(2024, 0, 31, 12);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
    now = Date.UTC(2024, 1, 1);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
  });

  test("a window that passed while idle starts from zero and ends at the next boundary", async () => {
    let now = Date.UTC(2024, 4, 10, 10, 15);
    const { s } = await start({ now: () => now });
    value(s, "quota:new:q1:2:hour");
    value(s, "quota:addandcheck:q1:2");
    now = Date.UTC(2024, 4, 10, 17, 45);
    expect(value(s, "quota:addandcheck:q1:2")).toBe("QUOTA_OK");
    now = Date.UTC(2024, 4, 10, 17, 59, 59);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_EXCEEDED");
    now = Date.UTC(2024, 4, 10, 18);
    expect(value(s, "quota:addandcheck:q1")).toBe("QUOTA_OK");
  });
});

describe("swcounter", () => {
  test("min, max, avg and last over a window of 2 (the blog's transcript)", async () => {
    const { s } = await start();
    expect(value(s, "swcounter:new:c1:2")).toBe("CREATED");
    expect(value(s, "swcounter:add:c1:100")).toBe("SUCCESS");
    expect(value(s, "swcounter:add:c1:50")).toBe("SUCCESS");
    expect(value(s, "swcounter:getmin:c1")).toBe("50");
    expect(value(s, "swcounter:getmax:c1")).toBe("100");
    expect(value(s, "swcounter:getavg:c1")).toBe("75");
    expect(value(s, "swcounter:getlast:c1")).toBe("50");
  });

  test("a new value overwrites the oldest slot", async () => {
    const { s } = await start();
    for (const key of ["swcounter:new:c1:2", "swcounter:add:c1:100", "swcounter:add:c1:50", "swcounter:add:c1:7"]) value(s, key);
    expect(value(s, "swcounter:getavg:c1")).toBe("28.5");
    expect(value(s, "swcounter:getmax:c1")).toBe("50");
    expect(value(s, "swcounter:getmin:c1")).toBe("7");
    expect(value(s, "swcounter:getlast:c1")).toBe("7");
  });

  test("the default window is 16 slots", async () => {
    const { s } = await start();
    value(s, "swcounter:new:c2");
    value(s, "swcounter:add:c2:3");
    expect(value(s, "swcounter:getavg:c2")).toBe("0.1875");
  });

  test("swcounter average counts unfilled slots as zero", async () => {
    const { s } = await start();
    value(s, "swcounter:new:c1:4");
    value(s, "swcounter:add:c1:10");
    expect(value(s, "swcounter:getavg:c1")).toBe("2.5");
  });

  test("min counts unfilled slots as zero", async () => {
    const { s } = await start();
    value(s, "swcounter:new:c1:2");
    value(s, "swcounter:add:c1:100");
    expect(value(s, "swcounter:getmin:c1")).toBe("0");
  });

  test("max starts from zero, so an all-negative window reports 0", async () => {
    const { s } = await start();
    value(s, "swcounter:new:c1:2");
    value(s, "swcounter:add:c1:-5");
    value(s, "swcounter:add:c1:-3");
    expect(value(s, "swcounter:getmax:c1")).toBe("0");
    expect(value(s, "swcounter:getmin:c1")).toBe("-5");
  });

  test("getlast of an empty counter is 0; values keep their decimals", async () => {
    const { s } = await start();
    value(s, "swcounter:new:c1:3");
    expect(value(s, "swcounter:getlast:c1")).toBe("0");
    value(s, "swcounter:add:c1:2.25");
    expect(value(s, "swcounter:getlast:c1")).toBe("2.25");
    expect(value(s, "swcounter:getavg:c1")).toBe("0.75");
  });

  test("averages print with 14 significant digits, like Lua 5.1", async () => {
    const { s } = await start();
    value(s, "swcounter:new:c1:3");
    value(s, "swcounter:add:c1:1");
    expect(value(s, "swcounter:getavg:c1")).toBe("0.33333333333333");
  });

  test("a bad window size answers NOT_CREATED; a non-numeric value SERVER_ERROR", async () => {
    const { s } = await start();
    expect(value(s, "swcounter:new:c1:0")).toBe("NOT_CREATED");
    expect(value(s, "swcounter:new:c1:2.5")).toBe("NOT_CREATED");
    expect(value(s, "swcounter:new:c1:many")).toBe("NOT_CREATED");
    value(s, "swcounter:new:c1:2");
    expect(reply(s, "swcounter:add:c1:lots")).toBe("SERVER_ERROR invalid number: lots\r\n");
    expect(reply(s, "swcounter:add:c1")).toBe("SERVER_ERROR missing argument: value\r\n");
  });

  test("reads of a missing counter answer ERROR_CACHE_MISS", async () => {
    const { s } = await start();
    for (const m of ["getlast", "getmin", "getmax", "getavg", "add:nosuch:1"]) {
      const key = m.includes(":") ? `swcounter:${m}` : `swcounter:${m}:nosuch`;
      expect(value(s, key)).toBe("ERROR_CACHE_MISS");
    }
  });
});
