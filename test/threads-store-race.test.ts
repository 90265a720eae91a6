/**
 * -t 2 under eviction pressure: connections on both threads set, read (many reads lock-free, see
 * Store.peek) and delete the same keys while small memory forces evictions and items spread over
 * extents. Every value read must be one that was written whole, and afterwards the shared store's
 * invariants (LRU length = items, bytes = sum of items, free lists and index consistent) hold.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type InProcessServer, startServer } from "../src/index.ts";
import type { RawClient } from "./helpers/raw-client.ts";
import { connectToBothThreads, stat } from "./helpers/threads.ts";
import { rng } from "./helpers/rng.ts";

const CONNECTIONS = 8;
const KEYS = 300;
const BATCHES = 120;
const SETS_PER_BATCH = 10;
const KEYS_PER_GET = 8;

let server: InProcessServer;
let clients: RawClient[];

beforeAll(async () => {
  server = await startServer({ threads: 2, memoryLimitMb: 2 });
  clients = await connectToBothThreads(server.port, CONNECTIONS);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.stop();
});

/** A value that says which key and write it belongs to, in every byte: `<key>#<n>#` then one letter. */
function valueFor(key: string, n: number, length: number): string {
  const head = `${key}#${n}#`;
  return head + String.fromCharCode(97 + (n % 26)).repeat(Math.max(0, length - head.length));
}

/** Throws unless every VALUE block in a get reply is a whole value written for its key. */
function checkValues(reply: string): number {
  const block = /VALUE (\S+) 0 (\d+)\r\n/g;
  let values = 0;
  for (let m = block.exec(reply); m !== null; m = block.exec(reply)) {
    const [key, length] = [m[1], Number(m[2])];
    const body = reply.slice(block.lastIndex, block.lastIndex + length);
    const n = Number(/^[^#]+#(\d+)#/.exec(body)?.[1] ?? Number.NaN);
    if (!body.startsWith(`${key}#`) || body !== valueFor(key, n, length).slice(0, length)) {
      throw new Error(`torn or foreign value for ${key} (${length} bytes): ${JSON.stringify(body.slice(0, 80))}`);
    }
    block.lastIndex += length + 2;
    values++;
  }
  return values;
}

async function drive(client: RawClient, id: number): Promise<number> {
  const random = rng(id + 1);
  const key = (): string => `k${Math.floor(random() * KEYS)}`;
  let seen = 0;
  for (let batch = 0; batch < BATCHES; batch++) {
    let sets = "";
    for (let i = 0; i < SETS_PER_BATCH; i++) {
      // 10 B to 60 KB, log-uniform: with -m 2 the store evicts and must piece items together.
      const length = Math.round(10 * 6000 ** random());
      const k = key();
      const value = valueFor(k, id * BATCHES * SETS_PER_BATCH + batch * SETS_PER_BATCH + i, length);
      sets += `set ${k} 0 0 ${length}\r\n${value}\r\n`;
    }
    const stored = await client.request(sets, (t) => t.split("\r\n").length > SETS_PER_BATCH);
    expect(stored.split("\r\n").filter((l) => l !== "" && l !== "STORED")).toEqual([]);
    const keys = Array.from({ length: KEYS_PER_GET }, key).join(" ");
    // Twice: the first read of an item takes the lock, later ones may not.
    seen += checkValues(await client.request(`get ${keys}\r\n`, "END\r\n"));
    seen += checkValues(await client.request(`get ${keys}\r\n`, "END\r\n"));
    await client.request(`delete ${key()}\r\n`);
  }
  return seen;
}

test("-t 2 racing sets, lock-free gets and deletes under eviction never read a torn value and leave the shared store consistent", async () => {
  const seen = await Promise.all(clients.map(drive));
  expect(seen.reduce((a, b) => a + b)).toBeGreaterThan(0);
  const stats = await clients[0].request("stats\r\n", "END\r\n");
  expect(stat(stats, "evictions")).toBeGreaterThan(0);
  expect(stat(stats, "get_lock_free")).toBeGreaterThan(0);
  const store = server.pool!.store;
  store.lock.hold(() => store.checkInvariants());
}, 60_000);

test("-t 2 values evicted and overwritten on one thread while read lock-free on the other are never torn", async () => {
  // Twenty 64 KB values in 1 MB: every set evicts, often a value some reader is copying.
  const own = await startServer({ threads: 2, memoryLimitMb: 1 });
  const conns = await connectToBothThreads(own.port, CONNECTIONS);
  const hot = Array.from({ length: 20 }, (_, i) => `h${i}`);
  const SIZE = 64 * 1024;
  const deadline = Date.now() + 1500;
  let n = 0;
  const writer = async (client: RawClient): Promise<void> => {
    while (Date.now() < deadline) {
      let sets = "";
      for (let i = 0; i < 8; i++, n++) sets += `set ${hot[n % hot.length]} 0 0 ${SIZE}\r\n${valueFor(hot[n % hot.length], n, SIZE)}\r\n`;
      await client.request(sets, (t) => t.split("\r\n").length > 8);
    }
  };
  const reader = async (client: RawClient): Promise<number> => {
    let seen = 0;
    for (let i = 0; Date.now() < deadline; i++) {
      const keys = `${hot[i % hot.length]} ${hot[(i + 7) % hot.length]}`;
      seen += checkValues(await client.request(`get ${keys}\r\n`.repeat(4), (t) => t.split("END\r\n").length > 4));
    }
    return seen;
  };
  try {
    const [, ...seen] = await Promise.all([writer(conns[0]), ...conns.slice(1).map(reader)]);
    expect(seen.reduce((a, b) => a + b)).toBeGreaterThan(0);
    const stats = await conns[0].request("stats\r\n", "END\r\n");
    expect(stat(stats, "get_lock_free")).toBeGreaterThan(0);
    expect(stat(stats, "evictions")).toBeGreaterThan(0);
    const store = own.pool!.store;
    store.lock.hold(() => store.checkInvariants());
  } finally {
    for (const c of conns) c.close();
    await own.stop();
  }
}, 30_000);
