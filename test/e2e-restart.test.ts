/**
 * Warm restart (--memory-file), through real processes (the source, or with CACHEISMO_BIN the
 * executable): what a graceful stop writes comes back at the next start, exactly, or nothing does.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RawClient } from "./helpers/raw-client.ts";
import { type LoggedServer, ServerProcesses } from "./helpers/server-processes.ts";

const dir = mkdtempSync(join(tmpdir(), "cacheismo-restart-"));
const servers = new ServerProcesses();

afterEach(() => servers.killAll());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** cacheismo with `-v --memory-file file` and `args`. */
function start(file: string, args: string[] = []): Promise<LoggedServer> {
  return servers.start(["-v", "--memory-file", file, ...args]);
}

/** Deterministic values over every byte but 'E' (so no value holds "END\r\n"). */
function valueBytes(seed: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const b = x >>> 24;
    bytes[i] = b === 0x45 ? 0x46 : b;
  }
  return bytes;
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");

/** Stores `count` items of mixed sizes (some above the 1 MiB block target); returns their keys. */
async function fill(client: RawClient, count: number, size: (i: number) => number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = `key:${i}`;
    const value = valueBytes(i, size(i));
    const reply = await client.request(Buffer.concat([Buffer.from(`set ${key} ${i * 7919} 0 ${value.length}\r\n`, "latin1"), value, Buffer.from("\r\n")]));
    expect(reply).toBe("STORED\r\n");
    keys.push(key);
  }
  return keys;
}

const getsAll = (client: RawClient, keys: readonly string[]): Promise<string> => client.request(`gets ${keys.join(" ")}\r\n`, "END\r\n");

const mixedSize = (i: number): number => (i % 50 === 49 ? 900_000 : (i * 397) % 5000);

describe.each([1, 2])("with -t %d", (threads) => {
  test("every key reads back byte for byte with its flags and CAS after SIGTERM and a start", async () => {
    const file = join(dir, `roundtrip-${threads}`);
    const first = await start(file, ["-t", String(threads), "-m", "16"]);
    const c1 = await first.client();
    const keys = await fill(c1, 150, mixedSize);
    const before = await getsAll(c1, keys);
    c1.close();
    expect(await first.stop()).toBe(0);
    expect(first.log()).toContain(`msg="saved the memory file" file=${file} items=150`);

    const second = await start(file, ["-t", String(threads), "-m", "16"]);
    const c2 = await second.client();
    expect(await getsAll(c2, keys)).toBe(before);
    expect(existsSync(file)).toBe(false);
    // The CAS counter goes on above every restored CAS.
    const highest = Math.max(...[...before.matchAll(/^VALUE \S+ \d+ \d+ (\d+)\r$/gm)].map((m) => Number(m[1])));
    await c2.request("set fresh 0 0 1\r\nx\r\n");
    const fresh = /^VALUE fresh 0 1 (\d+)\r$/m.exec(await c2.request("gets fresh\r\n", "END\r\n"));
    expect(Number(fresh?.[1])).toBeGreaterThan(highest);
    c2.close();
    await second.stop();
  }, 60_000);
});

test("the shutdown command saves the cache as SIGTERM does", async () => {
  const file = join(dir, "shutdown-command");
  const first = await start(file, ["-t", "2", "--enable-shutdown"]);
  const c1 = await first.client();
  const keys = await fill(c1, 20, (i) => i * 100);
  const before = await getsAll(c1, keys);
  c1.send("shutdown\r\n");
  expect(await first.exited).toBe(0);

  const second = await start(file, ["-t", "1"]);
  const c2 = await second.client();
  expect(await getsAll(c2, keys)).toBe(before);
  c2.close();
  await second.stop();
}, 30_000);

test("an item that expired while the server was down does not come back; its TTL counted from the original set", async () => {
  const file = join(dir, "expiry");
  const first = await start(file);
  const c1 = await first.client();
  await c1.request("set short 1 1 5\r\nhello\r\n");
  await c1.request("set long 2 1000 5\r\nworld\r\n");
  await c1.request("set never 3 0 5\r\nstays\r\n");
  c1.close();
  await first.stop();
  // The clock ticks whole seconds: 2.2 s puts "short" surely past its expiry.
  await Bun.sleep(2200);

  const second = await start(file);
  const c2 = await second.client();
  expect(await c2.request("get short long never\r\n", "END\r\n")).toBe("VALUE long 2 5\r\nworld\r\nVALUE never 3 5\r\nstays\r\nEND\r\n");
  expect(second.log()).toMatch(/msg="restored the memory file" .*items=2 kept=2 expired=1/);
  c2.close();
  await second.stop();
}, 30_000);

test("a quota and a set Lua object answer as before, still out of plain keys' reach", async () => {
  const file = join(dir, "objects");
  const first = await start(file, ["-e"]);
  const c1 = await first.client();
  const get = async (c: RawClient, key: string): Promise<string> => {
    const reply = await c.request(`get ${key}\r\n`, "END\r\n");
    return reply.split("\r\n")[1];
  };
  expect(await get(c1, "quota:new:user42:10:day")).toBe("CREATED");
  expect(await get(c1, "quota:addandcheck:user42:7")).toBe("QUOTA_OK");
  expect(await get(c1, "set:new:online")).toBe("CREATED");
  expect(await get(c1, "set:put:online:alice")).toBe("SUCCESS");
  expect(await get(c1, "set:put:online:bob")).toBe("SUCCESS");
  c1.close();
  await first.stop();

  const second = await start(file, ["-e"]);
  const c2 = await second.client();
  expect(await get(c2, "quota:addandcheck:user42:4")).toBe("QUOTA_EXCEEDED");
  expect(await get(c2, "quota:addandcheck:user42:3")).toBe("QUOTA_OK");
  expect(await get(c2, "set:count:online")).toBe("2");
  expect(await get(c2, "set:exist:online:bob")).toBe("EXISTS");
  expect(await c2.request("get online user42\r\n", "END\r\n")).toBe("END\r\n");
  c2.close();
  await second.stop();
}, 30_000);

test("with a smaller -m the most recently used items are the ones kept, in LRU order", async () => {
  const file = join(dir, "smaller");
  const first = await start(file, ["-m", "4"]);
  const c1 = await first.client();
  const keys = await fill(c1, 40, () => 50_000);
  // Read the first ten: they become the most recent. Recency, oldest first: key:10..39, key:0..9.
  await getsAll(c1, keys.slice(0, 10));
  c1.close();
  await first.stop();

  const second = await start(file, ["-m", "1"]);
  const c2 = await second.client();
  const byRecency = [...keys.slice(10), ...keys.slice(0, 10)];
  const hits: boolean[] = [];
  for (const key of byRecency) hits.push((await c2.request(`get ${key}\r\n`, "END\r\n")) !== "END\r\n");
  // A 1 MiB arena holds about 19 of these: the most recent ones, with no hole among them.
  const kept = hits.filter(Boolean).length;
  expect(kept).toBeGreaterThan(10);
  expect(kept).toBeLessThan(40);
  expect(hits).toEqual(byRecency.map((_, i) => i >= 40 - kept));
  c2.close();
  await second.stop();
}, 30_000);

test("a memory file that cannot be written is logged and the process still exits 0", async () => {
  const server = await start(join(dir, "no-such-dir", "file"));
  const c = await server.client();
  await c.request("set k 0 0 1\r\nv\r\n");
  c.close();
  expect(await server.stop()).toBe(0);
  expect(server.log()).toContain('msg="cannot save the memory file; the cache is lost"');
}, 30_000);

describe("damaged memory files", () => {
  test("truncated, flipped, foreign and other-version files each start empty or complete, never in between", async () => {
    const file = join(dir, "damaged");
    const first = await start(file, ["-m", "8"]);
    const c1 = await first.client();
    // About 3 MB: several blocks, so damage in a later one tests that earlier ones are undone.
    const keys = await fill(c1, 60, (i) => (i % 3 === 0 ? 100_000 : i * 31));
    const full = await getsAll(c1, keys);
    c1.close();
    await first.stop();
    const good = readFileSync(file);

    const initialSeed = Number(process.env.RESTART_SEED ?? Date.now() % 100000);
    let seed = initialSeed;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const cases: [string, Uint8Array][] = [];
    for (let i = 0; i < 4; i++) {
      const at = random(good.length);
      cases.push([`truncated at ${at}`, good.subarray(0, at)]);
    }
    // Header, first block header, and anywhere.
    for (const at of [random(128), 128 + random(12), random(good.length), random(good.length), random(good.length), good.length - 1 - random(64)]) {
      const flipped = Uint8Array.from(good);
      flipped[at] ^= 1 << random(8);
      cases.push([`bit flipped at ${at}`, flipped]);
    }
    const otherVersion = Uint8Array.from(good);
    new DataView(otherVersion.buffer).setUint32(24, 2, true);
    cases.push(["format version 2", otherVersion]);
    cases.push(["foreign file", new TextEncoder().encode("port = 11211\n".repeat(50))]);

    for (const [what, bytes] of cases) {
      writeFileSync(file, bytes);
      const server = await start(file, ["-m", "8"]);
      const c = await server.client();
      const got = await getsAll(c, keys);
      c.close();
      // Read or not, the file is gone before the port opens.
      expect(existsSync(file)).toBe(false);
      await server.stop();
      // Every one of these damages is detectable, so "complete" would be as wrong as "partial".
      const outcome = got === full ? "complete" : got === "END\r\n" ? "empty" : "partial";
      if (outcome !== "empty" || !server.log().includes('msg="memory file not restored; starting empty"')) {
        throw new Error(`${what} (RESTART_SEED=${initialSeed}): a ${outcome} cache; log:\n${server.log()}`);
      }
    }
  }, 120_000);
});
