/**
 * Pipelined forwarding keeps replies in the client's order, byte for byte: a seeded pipeline of
 * sets (small and large values, with and without noreply), gets, multigets across owners (with
 * duplicates and misses), deletes, incr and touch, sent through one node at random split points,
 * must answer exactly what the same requests answer when each key's owner is asked directly.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { type InProcessServer, startServer } from "../src/index.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { freePort } from "./helpers/spawn.ts";
import { rng } from "./helpers/rng.ts";

const ports = [freePort(), freePort(), freePort()];
const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
const continuum = new Continuum(parseServerList(peers), "md5");
const servers: InProcessServer[] = [];
const KEYS = Array.from({ length: 30 }, (_, i) => `ord${i}`);

beforeAll(async () => {
  for (const port of ports) {
    servers.push(await startServer({ port, memoryLimitMb: 32, cluster: true, peers, self: `127.0.0.1:${port}`, peerTimeoutMs: 5000 }));
  }
});
afterAll(async () => {
  for (const s of servers) await s.stop();
});

interface Request {
  text: string;
  keys: string[];
  /** Sent with noreply through the cluster; asked with a reply (dropped) of the owner. */
  noreply: boolean;
  retrieval: boolean;
}

function pipeline(seed: number, n: number): Request[] {
  const r = rng(seed);
  const pick = (): string => KEYS[Math.floor(r() * KEYS.length)];
  const value = (): string => {
    const len = r() < 0.05 ? 100_000 + Math.floor(r() * 200_000) : Math.floor(r() * 40);
    const c = String.fromCharCode(97 + Math.floor(r() * 26));
    return c.repeat(len);
  };
  const out: Request[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    const key = pick();
    if (x < 0.25) {
      const v = value();
      const noreply = r() < 0.3;
      out.push({ text: `set ${key} ${i} 0 ${v.length}${noreply ? " noreply" : ""}\r\n${v}\r\n`, keys: [key], noreply, retrieval: false });
    } else if (x < 0.45) {
      out.push({ text: `get ${key}\r\n`, keys: [key], noreply: false, retrieval: true });
    } else if (x < 0.7) {
      const keys = Array.from({ length: 2 + Math.floor(r() * 12) }, () => (r() < 0.1 ? "missing" : pick()));
      out.push({ text: `get ${keys.join(" ")}\r\n`, keys, noreply: false, retrieval: true });
    } else if (x < 0.78) {
      out.push({ text: `delete ${key}\r\n`, keys: [key], noreply: false, retrieval: false });
    } else if (x < 0.86) {
      out.push({ text: `incr ${key} 5\r\n`, keys: [key], noreply: false, retrieval: false });
    } else if (x < 0.93) {
      out.push({ text: `touch ${key} 1000\r\n`, keys: [key], noreply: false, retrieval: false });
    } else {
      out.push({ text: `append ${key} 0 0 3\r\nabc\r\n`, keys: [key], noreply: false, retrieval: false });
    }
  }
  return out;
}

const ownerPort = (key: string): number => ports[continuum.ownerIndex(new TextEncoder().encode(key))];
const replyDone = (retrieval: boolean) => (t: string) => (retrieval ? t.endsWith("END\r\n") : t.endsWith("\r\n"));

/** What the owners answer when asked directly, one request at a time; a multiget key by key. */
async function reference(requests: Request[]): Promise<string> {
  const clients = new Map<number, RawClient>();
  for (const p of ports) clients.set(p, await RawClient.connect(p));
  let expected = "";
  for (const req of requests) {
    if (req.retrieval) {
      let blocks = "";
      for (const key of req.keys) blocks += (await clients.get(ownerPort(key))!.request(`get ${key}\r\n`, "END\r\n")).slice(0, -5);
      expected += blocks + "END\r\n";
      continue;
    }
    const reply = await clients.get(ownerPort(req.keys[0]))!.request(req.text.replace(" noreply\r\n", "\r\n"), replyDone(false));
    if (!req.noreply) expected += reply;
  }
  for (const c of clients.values()) c.close();
  return expected;
}

async function flushAll(): Promise<void> {
  for (const p of ports) {
    const c = await RawClient.connect(p);
    expect(await c.request("flush_all\r\n")).toBe("OK\r\n");
    c.close();
  }
}

for (const seed of [1, 2, 3]) {
  test(`a pipeline of local and forwarded requests through one node is answered in order, byte for byte (seed ${seed})`, async () => {
    const requests = pipeline(seed, 400);
    const owners = new Set(requests.flatMap((q) => q.keys.filter((k) => k !== "missing").map(ownerPort)));
    expect(owners.size).toBe(3);
    await flushAll();
    const expected = await reference(requests);
    await flushAll();
    const entry = ports[seed % 3];
    const client = await RawClient.connect(entry);
    const bytes = Buffer.from(requests.map((q) => q.text).join(""), "latin1");
    const r = rng(seed * 7919);
    for (let at = 0; at < bytes.length; ) {
      const n = 1 + Math.floor(r() * 20_000);
      client.send(bytes.subarray(at, at + n));
      at += n;
    }
    const got = await client.readUntil((t) => t.length >= expected.length, 20_000);
    client.close();
    if (got !== expected) {
      let i = 0;
      while (i < got.length && got[i] === expected[i]) i++;
      throw new Error(`replies differ at byte ${i}: got ${JSON.stringify(got.slice(i, i + 120))}, expected ${JSON.stringify(expected.slice(i, i + 120))}`);
    }
  }, 60_000);
}
