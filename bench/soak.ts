// Data-integrity soak: several connections run random set/get/append/prepend/cas/delete/incr/decr
// on self-describing values (bench/robustness/record.ts: key, version and checksum inside) under
// constant eviction pressure (small -m), for a bounded time, and now and then flush_all (now,
// noreply or delayed 1-2 s; one at a time). Each key has one writer, so the exact value the server
// must hold is always known (bench/robustness/soak-model.ts). Corrupt values, lost acknowledged
// writes and values that outlived a flush must all be 0; misses are reported next to the server's
// eviction count, as eviction, expiry or a flush explains them. Liveness: every request must be
// answered within REPLY_DEADLINE_MS, or the run stops naming the request each connection was
// waiting on. Exits 1 on any failure.
//
//   bun run bench/soak.ts [--seconds 120] [--connections 6] [--memory-mb 4] [--seed N]
//                         [--server "<command with {port}>"]
import { parseArgs } from "node:util";
import { stats } from "./lib/memcache.ts";
import { killAllOnSignal } from "./lib/proc.ts";
import { McClient, REPLY_DEADLINE_MS } from "./robustness/client.ts";
import { FlushLog } from "./robustness/flush-log.ts";
import { defaultServerTemplate, type RunningProcess, startServer } from "./robustness/process.ts";
import { Rng } from "./robustness/rng.ts";
import { newTally, type Tally } from "./robustness/soak-model.ts";
import { type Op, type SoakShared, SoakWorker, type WorkloadShape } from "./robustness/soak-worker.ts";

export interface SoakOptions {
  seconds: number;
  connections: number;
  /** The server's -m: small, so the working set never fits. */
  memoryMb: number;
  seed: number;
  /** Command with "{port}"; -m is appended. */
  server: string;
  shape: WorkloadShape;
}

export interface SoakReport {
  ops: number;
  opsByKind: Record<Op, number>;
  tally: Tally;
  /** Writes refused with SERVER_ERROR (allowed under memory pressure; the key is deleted to resync). */
  serverErrors: number;
  evictions: number;
  flushes: FlushLog;
  /** What stopped the run early: each connection that failed (a request not answered in time, the connection closed), then the flushes that may have acted just before. */
  fatal: string[];
  serverAlive: boolean;
  maxRssBytes: number;
  elapsedMs: number;
  /** The server's last output lines, when it died. */
  serverLog: string | undefined;
}

export const DEFAULT_OPTIONS: SoakOptions = {
  seconds: 120,
  connections: 6,
  memoryMb: 4,
  seed: 1,
  server: defaultServerTemplate(),
  // ~6 x 400 keys x a few KB each (values grow by append) is several times 4 MB.
  shape: { recordKeys: 400, counterKeys: 20, maxPayload: 32 * 1024, maxValue: 128 * 1024, ttlShare: 0.02 },
};

export function passed(report: SoakReport): boolean {
  const t: Tally = report.tally;
  return report.fatal.length === 0 && report.serverAlive && t.corrupt === 0 && t.lostWrites === 0 && t.unexpected === 0 && t.survivedFlush === 0;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const server: RunningProcess = await startServer(options.server, ["-m", String(options.memoryMb)]);
  const started: number = Date.now();
  const deadline: number = started + options.seconds * 1000;
  const shared: SoakShared = { port: server.port, tally: newTally(), everyone: [], flushes: new FlushLog() };
  const workers: SoakWorker[] = [];
  const fatal: string[] = [];
  let maxRssBytes: number = server.rssBytes();
  const sampler: Timer = setInterval(() => {
    maxRssBytes = Math.max(maxRssBytes, server.rssBytes());
  }, 500);
  try {
    for (let i = 0; i < options.connections; i++) {
      workers.push(new SoakWorker(i, await McClient.connect(server.port), new Rng(options.seed * 1000 + i), options.shape, shared));
    }
    const loop = async (worker: SoakWorker): Promise<void> => {
      try {
        while (Date.now() < deadline && fatal.length === 0) await worker.step();
      } catch (error) {
        fatal.push(`connection ${worker.id} (seed ${options.seed}): ${(error as Error).message}`);
      }
    };
    await Promise.all(workers.map(loop));
    if (fatal.length > 0) fatal.push(shared.flushes.recent(2 * REPLY_DEADLINE_MS));
    let evictions: number = 0;
    if (server.alive() && fatal.length === 0) {
      await shared.flushes.waitUntilActed();
      try {
        evictions = Number((await stats(server.port, REPLY_DEADLINE_MS)).get("evictions") ?? 0);
      } catch (error) {
        fatal.push(`stats after the run (and after every delayed flush acted): ${(error as Error).message}`);
      }
    }
    const opsByKind = {} as Record<Op, number>;
    for (const w of workers) for (const [op, n] of Object.entries(w.ops)) opsByKind[op as Op] = (opsByKind[op as Op] ?? 0) + n;
    return {
      ops: Object.values(opsByKind).reduce((a, b) => a + b, 0),
      opsByKind,
      tally: shared.tally,
      serverErrors: workers.reduce((sum, w) => sum + w.serverErrors, 0),
      evictions,
      flushes: shared.flushes,
      fatal,
      serverAlive: server.alive(),
      maxRssBytes,
      elapsedMs: Date.now() - started,
      serverLog: server.alive() ? undefined : server.logTail(),
    };
  } finally {
    clearInterval(sampler);
    for (const w of workers) w.close();
    await server.stop();
  }
}

export function formatReport(r: SoakReport): string {
  const t: Tally = r.tally;
  return [
    `operations        ${r.ops} in ${(r.elapsedMs / 1000).toFixed(1)} s (${Object.entries(r.opsByKind).map(([k, n]) => `${k} ${n}`).join(", ")})`,
    `reads             ${t.reads}: ${t.hits} hits, ${t.misses} misses of written keys (server evictions: ${r.evictions})`,
    `corrupt values    ${t.corrupt}`,
    `lost writes       ${t.lostWrites}`,
    `survived a flush  ${t.survivedFlush} (flushes: ${r.flushes.summary()})`,
    `unexpected        ${t.unexpected}`,
    `server errors     ${r.serverErrors} (SERVER_ERROR on a write; key resynced by delete)`,
    `server            ${r.serverAlive ? "alive" : "DEAD"}, max RSS ${(r.maxRssBytes / 1024 / 1024).toFixed(1)} MB`,
    ...r.fatal.map((f) => `stopped early: ${f}`),
    ...t.examples.map((e) => `  ${e}`),
    ...(r.serverLog === undefined ? [] : [`server log:\n${r.serverLog}`]),
  ].join("\n");
}

function parseOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: "string" },
      connections: { type: "string" },
      "memory-mb": { type: "string" },
      seed: { type: "string" },
      server: { type: "string" },
    },
  });
  const positive = (raw: string | undefined, fallback: number, name: string): number => {
    const n: number = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const d: SoakOptions = DEFAULT_OPTIONS;
  return {
    ...d,
    seconds: positive(values.seconds, d.seconds, "seconds"),
    connections: positive(values.connections, d.connections, "connections"),
    memoryMb: positive(values["memory-mb"], d.memoryMb, "memory-mb"),
    seed: positive(values.seed, d.seed, "seed"),
    server: values.server ?? d.server,
  };
}

if (import.meta.main) {
  killAllOnSignal();
  const options: SoakOptions = parseOptions(Bun.argv.slice(2));
  console.log(`soak: ${options.seconds} s, ${options.connections} connections, -m ${options.memoryMb}, seed ${options.seed}, server: ${options.server}`);
  const report: SoakReport = await runSoak(options);
  console.log(formatReport(report));
  const ok: boolean = passed(report);
  console.log(ok ? "PASS" : "FAIL");
  process.exit(ok ? 0 : 1);
}
