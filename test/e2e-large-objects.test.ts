/**
 * Large Lua objects through a real server over TCP: a set grown to 100,000 members one put at a
 * time answers count, membership, listings, union and intersection exactly as a reference Set
 * does; and a random mix of puts, deletes and evictions under a small -m never shows an object
 * that differs from the model (an object is either whole and right, or gone).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RawClient } from "./helpers/raw-client.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";
import { rng } from "./helpers/rng.ts";

/** Keys per `get` line (the protocol's lines stop at 2048 bytes) and lines per write. */
const LINE_BYTES = 1800;
const LINES_PER_WRITE = 8;
const CONNECTIONS = 6;

/** The VALUE blocks of a reply as [key, data] pairs; throws on anything else but END. */
function parseValues(text: string): [string, string][] {
  const out: [string, string][] = [];
  let pos = 0;
  while (pos < text.length) {
    if (text.startsWith("END\r\n", pos)) {
      pos += 5;
      continue;
    }
    const eol = text.indexOf("\r\n", pos);
    const header = text.slice(pos, eol).split(" ");
    if (header[0] !== "VALUE") throw new Error(`unexpected reply line: ${text.slice(pos, eol)}`);
    const len = Number(header[3]);
    out.push([header[1], text.slice(eol + 2, eol + 2 + len)]);
    pos = eol + 2 + len + 2;
  }
  return out;
}

/** Runs every key as a multi-get, pipelined; returns each key's value in order ("" for a miss). */
async function getMany(c: RawClient, keys: string[]): Promise<string[]> {
  const lines: string[][] = [[]];
  let size = 4;
  for (const key of keys) {
    if (size + key.length + 1 > LINE_BYTES) {
      lines.push([]);
      size = 4;
    }
    lines[lines.length - 1].push(key);
    size += key.length + 1;
  }
  const values = new Map<string, string>();
  for (let i = 0; i < lines.length; i += LINES_PER_WRITE) {
    const batch = lines.slice(i, i + LINES_PER_WRITE);
    const ends = batch.length;
    const text = await c.request(batch.map((l) => `get ${l.join(" ")}\r\n`).join(""), (t) => t.endsWith("END\r\n") && t.split("END\r\n").length - 1 >= ends);
    for (const [key, value] of parseValues(text)) values.set(key, value);
  }
  return keys.map((k) => values.get(k) ?? "");
}

async function get(c: RawClient, key: string): Promise<string> {
  const text = await c.request(`get ${key}\r\n`, "END\r\n");
  return parseValues(text)[0]?.[1] ?? "";
}

const sortedLines = (members: Iterable<string>): string => [...members].sort().map((m) => `${m}\r\n`).join("");

describe("a set of 100,000 members over TCP", () => {
  let server: SpawnedServer;
  const clients: RawClient[] = [];

  beforeAll(async () => {
    server = await spawnCacheismo(["-m", "256", "-I", "16m", "-e", "-t", "2"]);
    // -t 2 and several connections, in case the kernel spreads them over both threads (it often
    // gives them all to one); scripting-object-logs.test.ts covers two threads on one store.
    for (let i = 0; i < CONNECTIONS; i++) clients.push(await RawClient.connect(server.port));
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server.kill();
  });

  test("count, membership, getall, union and intersection match a reference set", async () => {
    const big = new Set<string>();
    const other = new Set<string>();
    expect(await get(clients[0], "set:new:big")).toBe("CREATED");
    expect(await get(clients[0], "set:new:other")).toBe("CREATED");

    // Connections take turns by batch.
    const N = 100_000;
    const BATCH = 5_000;
    for (let start = 0; start < N; start += BATCH) {
      const keys: string[] = [];
      for (let i = start; i < start + BATCH; i++) {
        keys.push(`set:put:big:m${i}`);
        big.add(`m${i}`);
      }
      const replies = await getMany(clients[(start / BATCH) % CONNECTIONS], keys);
      expect(replies.every((r) => r === "SUCCESS")).toBe(true);
    }
    const otherKeys: string[] = [];
    for (let i = 90_000; i < 110_000; i++) {
      otherKeys.push(`set:put:other:m${i}`);
      other.add(`m${i}`);
    }
    await getMany(clients[1], otherKeys);
    // Deletes (some of members that are not there) and repeated puts.
    const churn: string[] = [];
    for (let i = 0; i < 20_000; i += 10) {
      churn.push(`set:delete:big:m${i}`, `set:delete:big:absent${i}`, `set:put:big:m${i + 1}`);
      big.delete(`m${i}`);
    }
    expect((await getMany(clients[0], churn)).every((r) => r === "SUCCESS")).toBe(true);

    for (const c of clients) {
      expect(await get(c, "set:count:big")).toBe(String(big.size));
      expect(await get(c, "set:count:other")).toBe(String(other.size));
    }
    const probes = ["m0", "m1", "m10", "m99999", "m100000", "m12345", "m54321", "nope"];
    const exist = await getMany(clients[1], probes.map((p) => `set:exist:big:${p}`));
    expect(exist).toEqual(probes.map((p) => (big.has(p) ? "EXISTS" : "NOT_FOUND")));

    expect(await get(clients[0], "set:getall:big")).toBe(sortedLines(big));
    expect(await get(clients[1], "set:union:big:other")).toBe(sortedLines(new Set([...big, ...other])));
    expect(await get(clients[0], "set:intersection:big:other")).toBe(sortedLines([...big].filter((m) => other.has(m))));
  }, 120_000);
});

describe("puts, deletes and evictions under a small -m", () => {
  let server: SpawnedServer;
  const clients: RawClient[] = [];

  beforeAll(async () => {
    server = await spawnCacheismo(["-m", "4", "-e", "-t", "2"]);
    // -t 2 and several connections, in case the kernel spreads them over both threads (it often
    // gives them all to one); scripting-object-logs.test.ts covers two threads on one store.
    for (let i = 0; i < CONNECTIONS; i++) clients.push(await RawClient.connect(server.port));
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server.kill();
  });

  test("every object read is either the model's or gone, never corrupt", async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100_000);
    const random = rng(seed);
    const pick = (n: number) => Math.floor(random() * n);
    /** Object name -> members (sets) or fields (maps); absent when the object is not stored. */
    const sets = new Map<string, Set<string>>();
    const maps = new Map<string, Map<string, string>>();
    // Enough objects, and enough client items pushing through, that objects not touched for a
    // while reach the LRU tail.
    const setNames = Array.from({ length: 40 }, (_, i) => `s${i}`);
    const mapNames = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const filler = "x".repeat(150_000);
    let evicted = 0;
    const context = () => `seed ${seed}`;

    for (let step = 0; step < 4000; step++) {
      const c = clients[pick(CONNECTIONS)];
      const r = random();
      if (r < 0.2) {
        // Client items push objects out of the 4 MB arena.
        expect(await c.request(`set fill${pick(200)} 0 0 ${filler.length}\r\n${filler}\r\n`)).toBe("STORED\r\n");
      } else if (r < 0.5) {
        const name = setNames[pick(setNames.length)];
        const model = sets.get(name);
        if (model === undefined) {
          expect(await get(c, `set:new:${name}`), context()).toBe("CREATED");
          sets.set(name, new Set());
          continue;
        }
        // Many small puts at once (one round trip), some deletes.
        const keys: string[] = [];
        const changes: [boolean, string][] = [];
        for (let i = 0; i < 1 + pick(60); i++) {
          const member = `e${pick(3000)}`;
          const put = random() < 0.7;
          keys.push(`set:${put ? "put" : "delete"}:${name}:${member}`);
          changes.push([put, member]);
        }
        const replies = await getMany(c, keys);
        for (let i = 0; i < replies.length; i++) {
          if (replies[i] === "ERROR_CACHE_MISS") {
            sets.delete(name);
            evicted++;
            break;
          }
          expect(replies[i], context()).toBe("SUCCESS");
          const [put, member] = changes[i];
          if (put) model.add(member);
          else model.delete(member);
        }
      } else if (r < 0.75) {
        const name = mapNames[pick(mapNames.length)];
        const model = maps.get(name);
        if (model === undefined) {
          expect(await get(c, `map:new:${name}`), context()).toBe("CREATED");
          maps.set(name, new Map());
          continue;
        }
        const field = `f${pick(500)}`;
        const value = random() < 0.8 ? `v${pick(1e6)}` : null;
        const reply = await get(c, value === null ? `map:delete:${name}:${field}` : `map:put:${name}:${field}:${value}`);
        if (reply === "ERROR_CACHE_MISS") {
          maps.delete(name);
          evicted++;
          continue;
        }
        expect(reply, context()).toBe("SUCCESS");
        if (value === null) model.delete(field);
        else model.set(field, value);
      } else if (r < 0.9) {
        const name = setNames[pick(setNames.length)];
        const model = sets.get(name);
        const [all, count] = await getMany(c, [`set:getall:${name}`, `set:count:${name}`]);
        if (all === "ERROR_CACHE_MISS") {
          if (model !== undefined) evicted++;
          sets.delete(name);
          continue;
        }
        expect(model, context()).toBeDefined();
        expect(all, context()).toBe(sortedLines(model!));
        expect(count, context()).toBe(String(model!.size));
      } else {
        const name = mapNames[pick(mapNames.length)];
        const model = maps.get(name);
        const all = await get(c, `map:getall:${name}`);
        if (all === "ERROR_CACHE_MISS") {
          if (model !== undefined) evicted++;
          maps.delete(name);
          continue;
        }
        expect(model, context()).toBeDefined();
        const fields = [...model!.keys()].sort();
        expect(all, context()).toBe(fields.map((f) => `${f} : ${model!.get(f)}\r\n`).join(""));
      }
    }
    // The run is only worth something if objects were really evicted along the way.
    expect(evicted, context()).toBeGreaterThan(0);
  }, 120_000);
});
