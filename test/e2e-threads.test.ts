/**
 * -t 2: two worker threads serve one port over one shared store. These race for real: many
 * connections, landing on both threads (checked with the per-thread connection counters), hit
 * the same keys at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RawClient } from "./helpers/raw-client.ts";
import { connectToBothThreads, stat } from "./helpers/threads.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

const CONNECTIONS = 8;
const scriptsDir = mkdtempSync(join(tmpdir(), "cacheismo-threads-"));
writeFileSync(
  join(scriptsDir, "tally.lua"),
  `tally = {}
local function add(t) t.n = t.n + 1 return t.n end
local function read(t) return t.n end
function tally.new(cmd, key, k) return executeNew(cmd, key, "tally", k, function() return { n = 0 } end) end
function tally.add(cmd, key, k) return executeReadWrite(cmd, key, "tally", k, add) end
function tally.get(cmd, key, k) return executeReadOnly(cmd, key, "tally", k, read) end
`,
);

let server: SpawnedServer;
let clients: RawClient[];

beforeAll(async () => {
  server = await spawnCacheismo(["-t", "2", "-m", "64", "-e", "-d", scriptsDir]);
  clients = await connectToBothThreads(server.port, CONNECTIONS);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.kill();
});

const countOf = (text: string, line: string): number => text.split(line).length - 1;

describe("-t 2", () => {
  test("stats sums both threads' counters", async () => {
    const stats = await clients[0].request("stats\r\n", "END\r\n");
    expect(stat(stats, "threads")).toBe(2);
    expect(stat(stats, "thread0:total_connections") + stat(stats, "thread1:total_connections")).toBe(stat(stats, "total_connections"));
    // The probe connection that found both threads closes asynchronously.
    for (let i = 0; stat(await clients[0].request("stats\r\n", "END\r\n"), "curr_connections") !== CONNECTIONS; i++) {
      if (i === 100) throw new Error("curr_connections never settled at the open connections");
      await Bun.sleep(20);
    }
  });

  test(`${CONNECTIONS} connections × 2,000 incr of one key from both threads end at exactly ${CONNECTIONS * 2000}`, async () => {
    expect(await clients[0].request("set counter 0 0 1\r\n0\r\n")).toBe("STORED\r\n");
    const batch = "incr counter 1\r\n".repeat(2000);
    await Promise.all(clients.map((c) => c.request(batch, (t) => countOf(t, "\r\n") >= 2000)));
    expect(await clients[0].request("get counter\r\n", "END\r\n")).toBe(`VALUE counter 0 5\r\n${CONNECTIONS * 2000}\r\nEND\r\n`);
  });

  test("racing cas on one key: exactly one connection wins each round", async () => {
    await clients[0].request("set raced 0 0 1\r\n0\r\n");
    for (let round = 0; round < 100; round++) {
      const uniques = await Promise.all(
        clients.map(async (c) => /VALUE raced \d+ \d+ (\d+)/.exec(await c.request("gets raced\r\n", "END\r\n"))![1]),
      );
      // Everyone read the same unique (no write in between), then all race to replace it.
      expect(new Set(uniques).size).toBe(1);
      const replies = await Promise.all(clients.map((c, i) => c.request(`cas raced 0 0 ${String(i).length} ${uniques[i]}\r\n${i}\r\n`)));
      expect(replies.filter((r) => r === "STORED\r\n").length).toBe(1);
      expect(replies.filter((r) => r === "EXISTS\r\n").length).toBe(CONNECTIONS - 1);
    }
  });

  test("racing add of a new key: exactly one STORED", async () => {
    for (let round = 0; round < 100; round++) {
      const replies = await Promise.all(clients.map((c) => c.request(`add fresh${round} 0 0 1\r\nx\r\n`)));
      expect(replies.filter((r) => r === "STORED\r\n").length).toBe(1);
    }
  });

  test("a value larger than a packet read on one thread while another overwrites it is never torn", async () => {
    const SIZE = 300 * 1024;
    const value = (letter: string): string => letter.repeat(SIZE);
    await clients[0].request(`set big 0 0 ${SIZE}\r\n${value("a")}\r\n`);
    const deadline = Date.now() + 2000;
    const writers = clients.slice(0, 2).map(async (c, w) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const letter = String.fromCharCode(98 + ((i * 2 + w) % 24));
        expect(await c.request(`set big 0 0 ${SIZE}\r\n${value(letter)}\r\n`)).toBe("STORED\r\n");
      }
    });
    let reads = 0;
    const readers = clients.slice(2).map(async (c) => {
      while (Date.now() < deadline) {
        const reply = await c.request("get big\r\n", "END\r\n");
        const body = reply.slice(reply.indexOf("\r\n") + 2, reply.length - "\r\nEND\r\n".length);
        expect(body.length).toBe(SIZE);
        expect(body).toBe(body[0].repeat(SIZE));
        reads++;
      }
    });
    await Promise.all([...writers, ...readers]);
    expect(reads).toBeGreaterThan(10);
  });

  test("Lua object updates from both threads are atomic: no update is lost", async () => {
    expect(await clients[0].request("get tally:new:t\r\n", "END\r\n")).toContain("CREATED");
    const batch = "get tally:add:t\r\n".repeat(250);
    await Promise.all(clients.map((c) => c.request(batch, (t) => countOf(t, "END\r\n") >= 250)));
    const total = CONNECTIONS * 250;
    expect(await clients[0].request("get tally:get:t\r\n", "END\r\n")).toBe(`VALUE tally:get:t 0 ${String(total).length}\r\n${total}\r\nEND\r\n`);
  });
});
