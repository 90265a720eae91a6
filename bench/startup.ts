// Start-up cost of cacheismo: executable size, median time from exec to accepting TCP
// connections, and RSS once idle.
//
//   bun run bench/startup.ts [--runs N] [--idle-ms N] [--server-args="-e ..."] [executable ...]
//
// With no executable, measures dist/cacheismo (if built) and `bun run src/main.ts`.
// Each run starts a fresh process (the targets take turns) on a free port with -m 64 and
// --server-args; "ready" is the first successful TCP connect, polled every millisecond; RSS is
// read from /proc after --idle-ms of quiet.
import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { freePort, killAll, killAllOnSignal, logTail, spawnLogged, stop } from "./lib/proc.ts";

const ROOT: string = resolve(import.meta.dir, "..");
const READY_TIMEOUT_MS: number = 15_000;
const LOG: string = "/tmp/cacheismo-startup-bench.log";

interface Target {
  name: string;
  argv: string[];
  sizeBytes: number | undefined;
}

interface Result {
  target: Target;
  medianMs: number;
  minMs: number;
  maxMs: number;
  idleRssMb: number;
}

function options(): { runs: number; idleMs: number; serverArgs: string[]; targets: Target[] } {
  const { values, positionals } = parseArgs({
    args: Bun.argv.slice(2),
    options: { runs: { type: "string", default: "10" }, "idle-ms": { type: "string", default: "1000" }, "server-args": { type: "string", default: "" } },
    allowPositionals: true,
  });
  const exes: string[] = positionals.length > 0 ? positionals : [resolve(ROOT, "dist/cacheismo")].filter((p) => existsSync(p));
  const targets: Target[] = exes.map((p) => ({ name: p, argv: [resolve(p)], sizeBytes: statSync(p).size }));
  if (positionals.length === 0) targets.push({ name: "bun run src/main.ts", argv: [process.execPath, "run", resolve(ROOT, "src/main.ts")], sizeBytes: undefined });
  const serverArgs: string[] = values["server-args"].split(" ").filter((a) => a !== "");
  return { runs: Number(values.runs), idleMs: Number(values["idle-ms"]), serverArgs, targets };
}

/** Milliseconds from spawn until a TCP connect succeeds. */
async function timeToReady(argv: string[], port: number, serverArgs: string[]): Promise<{ ms: number; proc: ReturnType<typeof spawnLogged> }> {
  const t0: number = performance.now();
  const proc = spawnLogged([...argv, "-p", String(port), "-m", "64", ...serverArgs], LOG);
  for (;;) {
    try {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      const ms: number = performance.now() - t0;
      socket.end();
      return { ms, proc };
    } catch {
      if (proc.exitCode !== null) throw new Error(`${argv.join(" ")} exited ${proc.exitCode}:\n${logTail(LOG)}`);
      if (performance.now() - t0 > READY_TIMEOUT_MS) throw new Error(`${argv.join(" ")} not ready after ${READY_TIMEOUT_MS} ms`);
      await Bun.sleep(1);
    }
  }
}

function rssMb(pid: number): number {
  const kb: number = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
  return kb / 1024;
}

/** Runs the targets in turn, round after round, so background load drifts over all of them alike. */
async function measureAll(targets: Target[], runs: number, idleMs: number, serverArgs: string[]): Promise<Result[]> {
  const times: number[][] = targets.map(() => []);
  const idleRss: number[] = targets.map(() => 0);
  for (let i = 0; i < runs; i++) {
    for (const [t, target] of targets.entries()) {
      const { ms, proc } = await timeToReady(target.argv, freePort(), serverArgs);
      times[t].push(ms);
      if (i === 0) {
        await Bun.sleep(idleMs);
        idleRss[t] = rssMb(proc.pid);
      }
      await stop(proc);
    }
  }
  return targets.map((target, t) => {
    const sorted: number[] = times[t].sort((a, b) => a - b);
    const mid: number = Math.floor(sorted.length / 2);
    const medianMs: number = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    return { target, medianMs, minMs: sorted[0], maxMs: sorted[sorted.length - 1], idleRssMb: idleRss[t] };
  });
}

function table(results: Result[], runs: number): string {
  const rows: string[][] = [["target", "size", `ready median (${runs} runs)`, "min..max", "idle RSS"]];
  for (const r of results) {
    rows.push([
      r.target.name,
      r.target.sizeBytes === undefined ? "-" : `${(r.target.sizeBytes / 1024 / 1024).toFixed(1)} MiB`,
      `${r.medianMs.toFixed(1)} ms`,
      `${r.minMs.toFixed(1)}..${r.maxMs.toFixed(1)} ms`,
      `${r.idleRssMb.toFixed(1)} MiB`,
    ]);
  }
  const widths: number[] = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c])).join("  ")).join("\n");
}

killAllOnSignal();
const { runs, idleMs, serverArgs, targets } = options();
if (targets.length === 0) throw new Error("nothing to measure");
let results: Result[];
try {
  results = await measureAll(targets, runs, idleMs, serverArgs);
} finally {
  await killAll();
}
console.log(table(results, runs));
