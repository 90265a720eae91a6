// The map-reduce example (examples/map-reduce) on three real nodes run with
// `-e --cluster --peers … -d examples/map-reduce`: counters written through any node live on their
// owners, and a query through any node fans out to every node and merges the answers.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { ROOT, freePort, serverCommand, waitForPort } from "./helpers/spawn.ts";

const ports = [freePort(), freePort(), freePort()];
const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
const procs: (Subprocess | null)[] = [null, null, null];
const clients: RawClient[] = [];
const PEER_TIMEOUT_MS = 400;

async function startNode(i: number): Promise<void> {
  const args = ["-p", String(ports[i]), "-m", "16", "-e", "-d", "examples/map-reduce"];
  args.push("--cluster", "--peers", peers, "--self", `127.0.0.1:${ports[i]}`, "--peer-timeout-ms", String(PEER_TIMEOUT_MS));
  procs[i] = Bun.spawn([...serverCommand(), ...args], { cwd: ROOT, stdout: "ignore", stderr: "ignore" });
  await waitForPort(ports[i], 8000);
}

async function stopNode(i: number): Promise<void> {
  procs[i]?.kill();
  await procs[i]?.exited;
  procs[i] = null;
}

async function connect(i: number): Promise<RawClient> {
  const c = await RawClient.connect(ports[i]);
  clients.push(c);
  return c;
}

/** Sends several single-key gets at once; resolves with the payload of each. */
async function values(c: RawClient, keys: string[]): Promise<string[]> {
  const text = await c.request(keys.map((k) => `get ${k}\r\n`).join(""), (t) => t.split("END\r\n").length > keys.length);
  return text
    .split("END\r\n")
    .slice(0, keys.length)
    .map((block, i) => {
      const m = /^VALUE (\S+) 0 \d+\r\n(.*)\r\n$/.exec(block);
      if (m === null || m[1] !== keys[i]) throw new Error(`${keys[i]}: ${JSON.stringify(block)}`);
      return m[2];
    });
}

function curr_items(stats: string): number {
  return Number(/STAT curr_items (\d+)/.exec(stats)![1]);
}

beforeAll(async () => {
  await Promise.all([0, 1, 2].map(startNode));
}, 10000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([0, 1, 2].map(stopNode));
});

describe("map-reduce example on a 3-node cluster", () => {
  // Counter c<i> holds 10i and 10i + 10: its average is 10i + 5.
  const N = 30;

  test("counters written through one node live on their owners; mapreduce:stats through any node merges all nodes", async () => {
    const c0 = await connect(0);
    const setup: string[] = [];
    for (let i = 0; i < N; i++) setup.push(`swcounter:new:c${i}:2`, `swcounter:add:c${i}:${10 * i}`, `swcounter:add:c${i}:${10 * i + 10}`);
    expect(new Set(await values(c0, setup))).toEqual(new Set(["CREATED", "SUCCESS"]));
    // Each node stores exactly the counters its ketama range owns.
    const continuum = new Continuum(parseServerList(peers), "md5");
    const owned = [0, 0, 0];
    for (let i = 0; i < N; i++) owned[continuum.ownerIndex(new TextEncoder().encode(`c${i}`))]++;
    expect(owned.every((n) => n > 0)).toBe(true);
    for (let node = 0; node < 3; node++) {
      const c = await connect(node);
      expect(curr_items(await c.request("stats\r\n", "END\r\n"))).toBe(owned[node]);
      // Any node can coordinate: the query runs on the owner of its object key and asks every node.
      const [all, some, avg] = await values(c, ["mapreduce:stats:*", "mapreduce:stats:c2", "mapreduce:avg:c1:c2:c3:nosuch"]);
      expect(all).toBe(`counters=${N} nodes=3/3 mean=${10 * ((N - 1) / 2) + 5} min=5 max=${10 * (N - 1) + 5}`);
      // c2, c20..c29: averages 25 and 205..295
      const some_ = [25, ...Array.from({ length: 10 }, (_, k) => 205 + 10 * k)];
      const mean = Number((some_.reduce((a, b) => a + b) / 11).toPrecision(14)); // Lua prints %.14g
      expect(some).toBe(`counters=11 nodes=3/3 mean=${mean} min=25 max=295`);
      expect(avg).toBe("counters=3 avg=25");
    }
  });

  test("with a node down, the query answers within the peer timeout from the nodes that are up", async () => {
    const survivor = await connect(0);
    // The coordinator runs on the owner of the object key; pick one owned by a surviving node.
    const continuum = new Continuum(parseServerList(peers), "md5");
    const prefix = ["*", "c", "c1", "c2", "c3"].find((p) => continuum.ownerIndex(new TextEncoder().encode(p)) !== 2)!;
    expect(prefix).toBeDefined();
    await stopNode(2);
    const started = performance.now();
    const [stats] = await values(survivor, [`mapreduce:stats:${prefix}`]);
    expect(performance.now() - started).toBeLessThan(PEER_TIMEOUT_MS + 1000);
    expect(stats).toMatch(/^counters=\d+ nodes=2\/3 /);
  });
});
