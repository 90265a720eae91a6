// Hit ratio of cacheismo vs Debian's memcached vs an ideal global LRU, on look-aside replays.
//
//   bun run bench/hitrate.ts [--requests N] [--keys N] [--workloads W1,W3] [--memory-mb N]
//                            [--target "<command with {port}, optional {mb}>"] [--eviction <policy>]
//                            [--seed N] [--batch N] [--run-timeout-s N] [--rate N]
//
// --rate N paces the replay at N requests per second (needed by the TTL workloads T1, T2: see
// bench/hitrate/replay.ts); the ideal LRU then frees expired keys at once (expiry-aware).
//
// Each workload is replayed (get; on a miss, set the key's fixed-size value; every hit checked
// byte for byte) against two in-process ideal LRU models and against a fresh memcached and a
// fresh cacheismo, both -m <memory-mb>, run side by side. See bench/hitrate/ for the pieces.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CACHEISMO_HEADER_BYTES } from "./hitrate/lru-model.ts";
import { killAll, killAllOnSignal } from "./lib/proc.ts";
import { type Targets, type WorkloadReport, checks, workloadTable } from "./hitrate/report.ts";
import { type ServerSpec, memcachedSpec, targetSpec } from "./hitrate/servers.ts";
import { type RunOptions, type SystemResult, runModel, runServer } from "./hitrate/systems.ts";
import { DEFAULT_WORKLOADS, buildTrace, findWorkload, type WorkloadSpec } from "./hitrate/workloads.ts";

const REPO_ROOT: string = resolve(import.meta.dir, "..");
const MIB = 1024 * 1024;
const ZIPF_ALPHA = 1.0;

interface Options {
  requests: number;
  keys: number;
  workloads: WorkloadSpec[];
  memoryMb: number;
  target: string;
  eviction: string | undefined;
  seed: number;
  batch: number;
  runTimeoutMs: number;
  rate: number;
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      requests: { type: "string", default: "1000000" },
      keys: { type: "string", default: "200000" },
      workloads: { type: "string", default: DEFAULT_WORKLOADS.map((w) => w.name).join(",") },
      "memory-mb": { type: "string", default: "64" },
      target: { type: "string", default: "bun run src/main.ts -p {port} -m {mb}" },
      eviction: { type: "string" },
      seed: { type: "string", default: "1" },
      batch: { type: "string", default: "100" },
      "run-timeout-s": { type: "string", default: "200" },
      rate: { type: "string", default: "0" },
    },
  });
  const rate = values.rate === "0" ? 0 : positiveInt("rate", values.rate);
  if (!values.target.includes("{port}")) throw new Error('--target must contain "{port}"');
  const requests = positiveInt("requests", values.requests);
  if (requests < 2) throw new Error("--requests must be at least 2 (the second half is measured)");
  const workloads = values.workloads.split(",").map((name) => findWorkload(name.trim()));
  const unpaced = workloads.filter((w) => w.ttl !== undefined && rate === 0);
  if (unpaced.length > 0) throw new Error(`${unpaced.map((w) => w.name).join(", ")} set TTLs: give --rate`);
  return {
    requests,
    keys: positiveInt("keys", values.keys),
    workloads,
    memoryMb: positiveInt("memory-mb", values["memory-mb"]),
    target: values.target,
    eviction: values.eviction,
    seed: positiveInt("seed", values.seed),
    batch: positiveInt("batch", values.batch),
    runTimeoutMs: positiveInt("run-timeout-s", values["run-timeout-s"]) * 1000,
    rate,
  };
}

function commandOutput(argv: string[]): string {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return (result.stdout.toString() + result.stderr.toString()).trim().split("\n")[0] ?? "";
}

function printSetup(options: Options, servers: ServerSpec[]): void {
  console.log("## Hit-ratio bench\n");
  const args = Bun.argv.slice(2).map((a) => (/^[\w.,\/=-]+$/.test(a) ? a : `"${a}"`));
  console.log(`- command: \`${["bun", "run", "bench/hitrate.ts", ...args].join(" ")}\``);
  console.log(`- nproc ${commandOutput(["nproc"])}, bun ${commandOutput(["bun", "--version"])}, ${commandOutput(["memcached", "-V"])}, load average at start ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`- ${options.keys.toLocaleString("en-US")} keys per phase, ${options.requests.toLocaleString("en-US")} requests, Zipf alpha ${ZIPF_ALPHA} unless the workload says, seed ${options.seed}, batches of ${options.batch} pipelined gets (misses set before the next batch)${options.rate > 0 ? `, paced at ${options.rate.toLocaleString("en-US")} requests/s (ideal LRU expiry-aware)` : ""}`);
  console.log(`- ideal LRU budget ${options.memoryMb} MiB: "payload bytes" counts key + value; "cacheismo item cost" counts ${CACHEISMO_HEADER_BYTES}-byte header + key + value rounded up to 32 bytes`);
  for (const spec of servers) console.log(`- ${spec.name}: \`${spec.argv.join(" ")}\``);
  console.log("");
}

async function runWorkload(spec: WorkloadSpec, options: Options, servers: ServerSpec[], runOptions: RunOptions): Promise<WorkloadReport> {
  process.stderr.write(`${spec.name}: building trace ... `);
  const trace = buildTrace(spec, { keys: options.keys, requests: options.requests, alpha: ZIPF_ALPHA, seed: options.seed });
  process.stderr.write("models ... ");
  const budget = options.memoryMb * MIB;
  const models: SystemResult[] = [
    await runModel(trace, "payload", budget, runOptions),
    await runModel(trace, "cacheismo-item", budget, runOptions),
  ];
  process.stderr.write(`servers ... `);
  // Both servers at once: each sees the same deterministic sequence on its own connection, so
  // running them side by side changes only the wall time, not the results.
  const live: SystemResult[] = await Promise.all(servers.map((s) => runServer(trace, s, runOptions)));
  process.stderr.write(`${live.map((r) => `${r.system} ${r.error ? "FAILED" : `${r.seconds.toFixed(1)} s`}`).join(", ")}\n`);
  return { trace, results: [...live, ...models] };
}

async function main(): Promise<number> {
  const started = performance.now();
  const options = parseOptions();
  const servers: ServerSpec[] = [memcachedSpec(options.memoryMb), targetSpec(options.target, options.memoryMb, options.eviction)];
  printSetup(options, servers);
  const workDir = mkdtempSync(join(tmpdir(), "cacheismo-hitrate-"));
  const runOptions: RunOptions = { batch: options.batch, rate: options.rate, runTimeoutMs: options.runTimeoutMs, workDir, repoRoot: REPO_ROOT };
  let broken = true;
  try {
    const reports: WorkloadReport[] = [];
    for (const spec of options.workloads) {
      const report = await runWorkload(spec, options, servers, runOptions);
      reports.push(report);
      console.log(workloadTable(report, options.memoryMb) + "\n");
    }
    const targets: Targets = { maxGapPp: 1, lruPolicy: (options.eviction ?? "lru") === "lru", minW1Held: 0.9, rssHeadroomBytes: 64 * MIB };
    const [text, problems] = checks(reports, options.memoryMb, targets);
    broken = problems;
    console.log(text);
    console.log(`\nWall time: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await killAll();
    if (broken) console.error(`\nserver logs kept in ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
  return broken ? 1 : 0;
}

killAllOnSignal();
process.exitCode = await main();
