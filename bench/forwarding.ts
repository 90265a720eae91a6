/**
 * What server-side forwarding costs, with real processes, in one run:
 *   bun run bench/forwarding.ts [seconds per case, default 4]
 *   bun run bench/forwarding.ts --side-by-side [--rounds N, default 3] [--only NAME] [seconds per case, default 5]
 *
 * Default: ops/s of plain `get` (32-byte values) sent to the key's owner directly vs through the
 * other node of a 2-node cluster (which forwards every one of them), from a closed-loop Bun load
 * generator in this process. Every key the load uses is owned by node B (chosen with the same
 * ketama continuum), so "direct" asks B and "forwarded" asks A. Each case runs after a 1 s warm-up.
 *
 * --side-by-side: twemproxy in front of memcached against cacheismo's own routing. Starts two
 * memcached (-t 1) behind a nutcracker pool (ketama, md5) and a 2-node cacheismo cluster (md5),
 * and drives each through one entry point (nutcracker's port; node A) with Debian's memcaslap
 * (-T 2 -c 32, unpinned): 9:1 get:set of 32-byte values, then 16-key multigets; then the
 * pipelined forwarding case above. Each workload runs ROUNDS rounds, which system goes first
 * alternating per round, and each system's best round is reported with the CPU time each of its
 * processes spent per operation in that round (user + system, all threads; the load generator's
 * not counted) and the share of the machine's CPU time that went idle meanwhile. --only runs just
 * the loads whose name contains NAME ("multiget", "9:1") and skips the pipelined case.
 *
 * On a small machine the load generator and the servers share the cores: compare the ratios.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Socket, Subprocess } from "bun";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { type MemaslapLoad, type MemaslapResult, runMemaslap } from "./lib/memaslap.ts";
import { request } from "./lib/memcache.ts";
import { cpuMicrosPerOp, cpuTicks, freePort, killAllOnSignal, machineTicks, spawnLogged, stop, waitForMemcache } from "./lib/proc.ts";

const ROOT = resolve(import.meta.dir, "..");
const SIDE_BY_SIDE = process.argv.includes("--side-by-side");
const roundsAt = process.argv.indexOf("--rounds");
/** Side-by-side: rounds per workload, each system's best round reported. */
const ROUNDS = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 3;
const onlyAt = process.argv.indexOf("--only");
/** Side-by-side: run only the memcaslap loads whose name contains this (and skip the pipelined case). */
const ONLY = onlyAt > 0 ? process.argv[onlyAt + 1] : undefined;
const SECONDS = Number(process.argv.slice(2).find((a, i, all) => !a.startsWith("--") && all[i - 1] !== "--rounds" && all[i - 1] !== "--only") ?? (SIDE_BY_SIDE ? "5" : "4"));
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

/** Starts a 2-node cacheismo cluster on fresh ports; its nodes, in --peers order. */
async function startCluster(workDir: string): Promise<{ port: number; logPath: string; proc: Subprocess }[]> {
  const ports = [freePort(), freePort()];
  const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
  const nodes = ports.map((port, i) => {
    const argv = ["bun", "run", "src/main.ts", "-p", String(port), "-m", "64", "-t", "1", "--cluster", "--peers", peers, "--self", `127.0.0.1:${port}`];
    const logPath = join(workDir, `node${i}.log`);
    return { port, logPath, proc: spawnLogged(argv, logPath, ROOT) };
  });
  await Promise.all(nodes.map((n) => waitForMemcache(n.proc, n.port, n.logPath, 10_000)));
  return nodes;
}

/** KEYS keys of 32 bytes, all owned by node 1 of the cluster on `ports`. */
function keysOwnedBySecond(ports: readonly number[]): string[] {
  const continuum = new Continuum(parseServerList(ports.map((p) => `127.0.0.1:${p}`).join(",")), "md5");
  const encoder = new TextEncoder();
  const keys: string[] = [];
  for (let i = 0; keys.length < KEYS; i++) {
    const key = `fwd:${String(i).padStart(28, "0")}`;
    if (continuum.ownerIndex(encoder.encode(key)) === 1) keys.push(key);
  }
  return keys;
}

/** The pipelined forwarding case: direct at the owner vs through the other node. */
async function forwardingRow(nodes: readonly { port: number }[], connections: number, depth: number): Promise<Record<string, string | number>> {
  const [nodeA, nodeB] = nodes;
  const keys = keysOwnedBySecond(nodes.map((n) => n.port));
  await store(nodeB.port, keys);
  const direct = await runLoad(nodeB.port, keys, connections, depth, SECONDS);
  const forwarded = await runLoad(nodeA.port, keys, connections, depth, SECONDS);
  return {
    load: `${connections} conns × ${depth} in flight`,
    "direct at owner (ops/s)": Math.round(direct.opsPerSec).toLocaleString("en-US"),
    "via non-owner (ops/s)": Math.round(forwarded.opsPerSec).toLocaleString("en-US"),
    "via / direct": (forwarded.opsPerSec / direct.opsPerSec).toFixed(2),
    errors: direct.errors + forwarded.errors,
  };
}

async function forwardingCost(workDir: string): Promise<void> {
  const nodes = await startCluster(workDir);
  try {
    const rows = [];
    for (const { connections, depth } of SHAPES) rows.push(await forwardingRow(nodes, connections, depth));
    console.log(`plain get of ${KEYS} keys (32-byte values) owned by node B of a 2-node cluster; ${SECONDS} s per case`);
    console.table(rows);
  } finally {
    await Promise.all(nodes.map((n) => stop(n.proc)));
  }
}

/** Resolves once something accepts TCP connections on the port (nutcracker answers no `version`). */
async function waitForListen(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })).end();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
      await Bun.sleep(50);
    }
  }
}

/** Two memcached behind a nutcracker pool (ketama, md5); returns nutcracker's port. */
async function startTwemproxy(workDir: string): Promise<{ port: number; procs: Subprocess[] }> {
  const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : [];
  const mcPorts = [freePort(), freePort()];
  const procs = mcPorts.map((port, i) => spawnLogged(["memcached", "-t", "1", "-m", "64", "-U", "0", "-l", "127.0.0.1", "-p", String(port), ...asRoot], join(workDir, `mc${i}.log`)));
  await Promise.all(mcPorts.map((port, i) => waitForMemcache(procs[i], port, join(workDir, `mc${i}.log`), 10_000)));
  const port = freePort();
  const yaml =
    `pool:\n  listen: 127.0.0.1:${port}\n  hash: md5\n  distribution: ketama\n  timeout: 2000\n  servers:\n` +
    mcPorts.map((p) => `   - 127.0.0.1:${p}:1\n`).join("");
  writeFileSync(join(workDir, "nutcracker.yml"), yaml);
  procs.push(
    spawnLogged(["nutcracker", "-c", join(workDir, "nutcracker.yml"), "-o", join(workDir, "nutcracker.log"), "-s", String(freePort()), "-a", "127.0.0.1", "-p", join(workDir, "nc.pid")], join(workDir, "nc.out")),
  );
  await waitForListen(port, 10_000);
  return { port, procs };
}

const MEMASLAP_LOADS: readonly { name: string; load: MemaslapLoad }[] = [
  { name: "get:set 9:1, 32 B", load: { valueBytes: 32, keyBytes: 32, setRatio: 0.1, keysPerGet: 1, connections: 32 } },
  { name: "16-key multiget, 32 B (ops = keys)", load: { valueBytes: 32, keyBytes: 32, setRatio: 0.1, keysPerGet: 16, connections: 32 } },
];

function misses(r: MemaslapResult): string {
  return `${r.clientGetMisses}/${r.clientGets}${r.anomalies > 0 ? ` (${r.anomalies} odd lines: ${r.firstAnomaly})` : ""}`;
}

/** A memcaslap round with the CPU µs per operation of each process serving it, and how idle the machine was. */
interface Round {
  result: MemaslapResult;
  cpuPerOp: number[];
  idleShare: number;
}

async function measuredRound(port: number, pids: readonly number[], load: MemaslapLoad, config: string): Promise<Round> {
  const before = pids.map(cpuTicks);
  const machineBefore = machineTicks();
  const result = await runMemaslap(port, load, SECONDS, config, 2);
  const machineAfter = machineTicks();
  const after = pids.map(cpuTicks);
  const cpuPerOp = pids.map((_, i) => {
    const perOp = cpuMicrosPerOp(before[i], after[i], result.ops);
    return perOp === undefined ? Number.NaN : perOp.user + perOp.system;
  });
  const idleShare = (machineAfter.idle - machineBefore.idle) / (machineAfter.total - machineBefore.total);
  return { result, cpuPerOp, idleShare };
}

function cpuCell(round: Round): string {
  const parts = round.cpuPerOp.map((us) => us.toFixed(2));
  const total = round.cpuPerOp.reduce((sum, us) => sum + us, 0);
  return `${parts.join(" + ")} = ${total.toFixed(2)}`;
}

async function sideBySide(workDir: string): Promise<void> {
  const twem = await startTwemproxy(workDir);
  const nodes = await startCluster(workDir);
  // nutcracker, memcached 0, memcached 1; node A, node B
  const twemPids = [twem.procs[2].pid, twem.procs[0].pid, twem.procs[1].pid];
  const ourPids = nodes.map((n) => n.proc.pid);
  try {
    const rows: Record<string, string | number>[] = [];
    const config = join(workDir, "memaslap.cfg");
    const best = (a: Round | null, b: Round): Round => (a === null || b.result.opsPerSec > a.result.opsPerSec ? b : a);
    for (const { name, load } of MEMASLAP_LOADS) {
      if (ONLY !== undefined && !name.includes(ONLY)) continue;
      let twemRound: Round | null = null;
      let ours: Round | null = null;
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 0) twemRound = best(twemRound, await measuredRound(twem.port, twemPids, load, config));
        ours = best(ours, await measuredRound(nodes[0].port, ourPids, load, config));
        if (round % 2 === 1) twemRound = best(twemRound, await measuredRound(twem.port, twemPids, load, config));
      }
      if (twemRound === null || ours === null) throw new Error("--rounds must be at least 1");
      rows.push({
        load: name,
        "nutcracker + 2 memcached (ops/s)": twemRound.result.opsPerSec.toLocaleString("en-US"),
        "cacheismo 2-node cluster (ops/s)": ours.result.opsPerSec.toLocaleString("en-US"),
        "cacheismo / nutcracker": (ours.result.opsPerSec / twemRound.result.opsPerSec).toFixed(2),
        "CPU µs/op nutcracker + mc + mc": cpuCell(twemRound),
        "CPU µs/op node A + node B": cpuCell(ours),
        "machine idle (nutcracker; cacheismo)": `${(100 * twemRound.idleShare).toFixed(0)} %; ${(100 * ours.idleShare).toFixed(0)} %`,
        "get misses (nutcracker; cacheismo)": `${misses(twemRound.result)}; ${misses(ours.result)}`,
      });
    }
    console.log(`memcaslap -T 2 -c 32 through one entry point each, best of ${ROUNDS} rounds of ${SECONDS} s`);
    console.table(rows);
    if (ONLY !== undefined) return;
    const { connections, depth } = SHAPES[1];
    console.log(`plain get of ${KEYS} keys owned by node B, Bun load generator, ${ROUNDS} rounds of ${SECONDS} s`);
    const forwardingRows = [];
    for (let round = 0; round < ROUNDS; round++) forwardingRows.push(await forwardingRow(nodes, connections, depth));
    console.table(forwardingRows);
  } finally {
    await Promise.all([...nodes.map((n) => stop(n.proc)), ...twem.procs.map((p) => stop(p))]);
  }
}

killAllOnSignal();
const workDir = mkdtempSync(join(tmpdir(), "cacheismo-forwarding-"));
try {
  await (SIDE_BY_SIDE ? sideBySide(workDir) : forwardingCost(workDir));
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
