/**
 * What server-side forwarding costs: ops/s of plain `get` (32-byte values) sent to the key's
 * owner directly vs through the other node of a 2-node cluster (which forwards every one of them),
 * with two real cacheismo processes and a closed-loop Bun load generator in this process:
 *   bun run bench/forwarding.ts [seconds per case, default 4]
 * Every key the load uses is owned by node B (chosen with the same ketama continuum), so "direct"
 * asks B and "forwarded" asks A. Each case runs after a 1 s warm-up. On a small machine the load
 * generator and both servers share the cores, so compare the ratio rather than the absolute rates.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Socket } from "bun";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { request } from "./lib/memcache.ts";
import { freePort, killAllOnSignal, spawnLogged, stop, waitForMemcache } from "./lib/proc.ts";

const ROOT = resolve(import.meta.dir, "..");
const SECONDS = Number(process.argv[2] ?? "4");
const KEYS = 1000;
const VALUE = "v".repeat(32);
/** Load shapes: connections × requests in flight on each. */
const SHAPES: readonly { connections: number; depth: number }[] = [
  { connections: 16, depth: 1 },
  { connections: 16, depth: 16 },
];

interface LoadResult {
  opsPerSec: number;
  errors: number;
}

/**
 * `connections` sockets, each keeping `depth` gets in flight over `keys`, for `seconds`.
 * The values hold no line that could be taken for a reply end.
 */
async function runLoad(port: number, keys: readonly string[], connections: number, depth: number, seconds: number): Promise<LoadResult> {
  const requests = keys.map((k) => Buffer.from(`get ${k}\r\n`));
  let done = 0;
  let errors = 0;
  let running = true;
  const sockets: Socket<{ next: number; tail: string }>[] = [];
  const send = (s: Socket<{ next: number; tail: string }>): void => {
    s.write(requests[s.data.next++ % requests.length]);
  };
  for (let c = 0; c < connections; c++) {
    sockets.push(
      await Bun.connect<{ next: number; tail: string }>({
        hostname: "127.0.0.1",
        port,
        data: { next: c * 37, tail: "" },
        socket: {
          data(s, chunk) {
            // A reply ends with an END line (hit or miss) or is an error line; a split line waits in tail.
            const lines = (s.data.tail + chunk.toString("latin1")).split("\r\n");
            s.data.tail = lines.pop()!;
            let replies = 0;
            let failed = 0;
            for (const line of lines) {
              if (line === "END") replies++;
              else if (line.startsWith("SERVER_ERROR")) failed++;
            }
            done += replies + failed;
            errors += failed;
            if (running) for (let i = 0; i < replies + failed; i++) send(s);
          },
        },
      }),
    );
  }
  for (const s of sockets) for (let i = 0; i < depth; i++) send(s);
  await Bun.sleep(1000); // warm-up
  const startDone = done;
  const started = performance.now();
  await Bun.sleep(seconds * 1000);
  const opsPerSec = ((done - startDone) / (performance.now() - started)) * 1000;
  running = false;
  for (const s of sockets) s.end();
  return { opsPerSec, errors };
}

/** Stores every key through `port`, 100 per request, and checks one comes back. */
async function store(port: number, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 100) {
    const batch = keys.slice(i, i + 100);
    const sets = batch.map((k) => `set ${k} 0 0 ${VALUE.length}\r\n${VALUE}`).join("\r\n");
    const reply = await request(port, sets, (r) => r.split("STORED\r\n").length > batch.length, 5000);
    if (reply !== "STORED\r\n".repeat(batch.length)) throw new Error(`set failed: ${reply.slice(0, 200)}`);
  }
  const check = await request(port, `get ${keys[0]}`, (r) => r.endsWith("END\r\n"), 5000);
  if (check !== `VALUE ${keys[0]} 0 ${VALUE.length}\r\n${VALUE}\r\nEND\r\n`) throw new Error(`get failed: ${check}`);
}

killAllOnSignal();
const workDir = mkdtempSync(join(tmpdir(), "cacheismo-forwarding-"));
const ports = [freePort(), freePort()];
const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
const nodes = ports.map((port, i) => {
  const argv = ["bun", "run", "src/main.ts", "-p", String(port), "-m", "64", "--cluster", "--peers", peers, "--self", `127.0.0.1:${port}`];
  const logPath = join(workDir, `node${i}.log`);
  return { port, logPath, proc: spawnLogged(argv, logPath, ROOT) };
});
try {
  await Promise.all(nodes.map((n) => waitForMemcache(n.proc, n.port, n.logPath, 10_000)));
  const [nodeA, nodeB] = nodes;

  // Keys of 32 bytes, all owned by node B.
  const continuum = new Continuum(parseServerList(peers), "md5");
  const encoder = new TextEncoder();
  const keys: string[] = [];
  for (let i = 0; keys.length < KEYS; i++) {
    const key = `fwd:${String(i).padStart(28, "0")}`;
    if (continuum.ownerIndex(encoder.encode(key)) === 1) keys.push(key);
  }
  await store(nodeB.port, keys);

  const rows = [];
  for (const { connections, depth } of SHAPES) {
    const direct = await runLoad(nodeB.port, keys, connections, depth, SECONDS);
    const forwarded = await runLoad(nodeA.port, keys, connections, depth, SECONDS);
    rows.push({
      load: `${connections} conns × ${depth} in flight`,
      "direct at owner (ops/s)": Math.round(direct.opsPerSec).toLocaleString("en-US"),
      "via non-owner (ops/s)": Math.round(forwarded.opsPerSec).toLocaleString("en-US"),
      "via / direct": (forwarded.opsPerSec / direct.opsPerSec).toFixed(2),
      errors: direct.errors + forwarded.errors,
    });
  }
  console.log(`plain get of ${KEYS} keys (32-byte values) owned by node B of a 2-node cluster; ${SECONDS} s per case`);
  console.table(rows);
} finally {
  await Promise.all(nodes.map((n) => stop(n.proc)));
  rmSync(workDir, { recursive: true, force: true });
}
