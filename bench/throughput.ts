// Throughput of cacheismo vs Debian's memcached under the same memcaslap load.
//
//   bun run bench/throughput.ts [--seconds N] [--rounds N] [--warmup N] [--threads N] [--only <text>] [--floor] [--interleave N] [--target "<command with {port}>"]
//
// --threads N (default 1): memcached -t N, cacheismo -t N and N memcaslap threads, unpinned; the
// 32 B and multiget rows then use 64 connections (the multi-core issue's `memcaslap -T 2 -c 64`),
// so that the kernel's reusePort split of connections between threads evens out.
// With -t 1 the write-heavy rows pin the server to core 0 and memcaslap to core 1.
// --only <text>: just the workloads whose name contains <text>.
// --interleave N: the write-heavy rows' servers start once each and take turns under the load in
// N windows of --seconds (see measureInterleaved), which takes the machine's drift out of their
// ratio; the table then gives each server's mean over its windows.
// --floor: also runs bench/lib/floor-server.ts (a Bun server that frames requests and answers
// without a store) under the same load: what Bun itself costs, beside what cacheismo adds.
//
// Per workload and round, each server (memcached, then the target; reversed on even
// rounds) is started fresh, warmed up by the same load for --warmup seconds (default 2, not
// counted: cacheismo's JIT compiles its hot code in its first 2-3 s under load, 0.4-0.8 s of
// compiler CPU by perf, where memcached has nothing to warm), driven by memcaslap for --seconds,
// and stopped. The table keeps each server's BEST round, and beside it the median of the
// per-round ratios (the two servers of a round run back to back). Per-run checks (server- and
// client-side hit ratio, value verification, unexpected replies) are printed so a broken server
// can't look fast.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { runMemaslap, type MemaslapLoad, type MemaslapResult } from "./lib/memaslap.ts";
import { stats } from "./lib/memcache.ts";
import { cpuMicrosPerOp, cpuTicks, freePort, killAll, killAllOnSignal, spawnLogged, stop, waitForMemcache } from "./lib/proc.ts";

const MEMORY_MB: number = 64;
const STARTUP_TIMEOUT_MS: number = 15_000;
const MIN_HIT_RATIO: number = 0.99;
const REPO_ROOT: string = resolve(import.meta.dir, "..");
const FLOOR: string = "bun floor";

interface Workload extends MemaslapLoad {
  name: string;
  /** At -t 1: server on core 0, load generator on core 1. */
  pinned?: boolean;
  /** Whether every get should hit (false where eviction is the point). */
  expectHits: boolean;
  /** Connections with --threads above 1, where different from `connections`. */
  threadedConnections?: number;
}

const BASE = { keyBytes: 32, setRatio: 0.1, expectHits: true } as const;
/** Connections of the 32 B and multiget rows with more than one thread. */
const THREADED_CONNECTIONS = 64;
/** Sessions, write-through caches: 90 % sets of 64-byte keys, 32 connections; -m 64 evicts. */
const WRITE_HEAVY = { keyBytes: 64, setRatio: 0.9, keysPerGet: 1, connections: 32, pinned: true, expectHits: false } as const;
const WORKLOADS: Workload[] = [
  { ...BASE, name: "get:set 9:1, 32 B values", valueBytes: 32, keysPerGet: 1, connections: 16, threadedConnections: THREADED_CONNECTIONS },
  // 6 connections x 1k-key windows x ~4.2 KB ≈ 26 MB live. memcached -m 64 holds ~14.7k such
  // items; with 8 connections memcached itself already misses live keys and fails some stores.
  { ...BASE, name: "get:set 9:1, 4 KB values", valueBytes: 4096, keysPerGet: 1, connections: 6 },
  { ...BASE, name: "16-key multiget (9:1, 32 B; ops = keys)", valueBytes: 32, keysPerGet: 16, connections: 16, threadedConnections: THREADED_CONNECTIONS },
  { ...WRITE_HEAVY, name: "write-heavy set:get 9:1, 1 KB values", valueBytes: 1024 },
  { ...WRITE_HEAVY, name: "write-heavy set:get 9:1, 4 KB values", valueBytes: 4096 },
];

interface ServerSpec {
  name: string;
  /** argv with "{port}" placeholders. */
  command: string[];
}

const argvFor = (spec: ServerSpec, port: number): string[] => spec.command.map((w) => w.replaceAll("{port}", String(port)));

interface Run {
  workload: string;
  server: string;
  round: number;
  result: MemaslapResult | undefined;
  error: string | undefined;
  /** get_hits / (get_hits + get_misses) over the run, from the server's own stats. */
  serverHitRatio: number | undefined;
  /** The server's VmHWM at the end of the run. */
  peakRssBytes: number | undefined;
  /** The server's CPU time (user, system; all its threads) per operation, in µs. */
  cpuPerOp: { user: number; system: number } | undefined;
  expectHits: boolean;
}

function clientHitRatio(r: MemaslapResult): number | undefined {
  return r.clientGets === 0 ? undefined : 1 - r.clientGetMisses / r.clientGets;
}

const percent = (ratio: number | undefined): string => (ratio === undefined ? "n/a" : `${(ratio * 100).toFixed(2)}%`);

interface Options {
  seconds: number;
  rounds: number;
  warmup: number;
  threads: number;
  target: string;
  only: string;
  floor: boolean;
  /** Windows per server of the interleaved write-heavy rows; 0: those rows run in rounds too. */
  interleave: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      seconds: { type: "string", default: "10" },
      rounds: { type: "string", default: "2" },
      warmup: { type: "string", default: "2" },
      threads: { type: "string", default: "1" },
      only: { type: "string", default: "" },
      floor: { type: "boolean", default: false },
      interleave: { type: "string", default: "0" },
      target: { type: "string", default: `bun run src/main.ts -p {port} -m ${MEMORY_MB}` },
    },
  });
  const seconds: number = Number(values.seconds);
  const rounds: number = Number(values.rounds);
  const threads: number = Number(values.threads);
  const warmup: number = Number(values.warmup);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error("--warmup must be a whole number of seconds");
  if (!Number.isInteger(threads) || threads < 1) throw new Error("--threads must be a positive integer");
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error("--seconds must be a positive integer");
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds must be a positive integer");
  const interleave: number = Number(values.interleave);
  if (!Number.isInteger(interleave) || interleave < 0) throw new Error("--interleave must be a whole number of windows");
  if (!values.target.includes("{port}")) throw new Error('--target must contain "{port}"');
  return { seconds, rounds, warmup, threads, target: values.target, only: values.only, floor: values.floor, interleave };
}

/**
 * The target command split on whitespace (no shell quoting); -m and -t are appended if absent so
 * both servers get the same memory and threads.
 */
function targetSpec(template: string, threads: number): ServerSpec {
  const words: string[] = template.trim().split(/\s+/);
  if (!words.includes("-m") && !words.includes("--memory-limit")) words.push("-m", String(MEMORY_MB));
  if (!words.includes("-t") && !words.includes("--threads")) words.push("-t", String(threads));
  return { name: "cacheismo", command: words };
}

function memcachedSpec(threads: number): ServerSpec {
  return {
    name: "memcached",
    command: [
      "memcached", "-t", String(threads), "-m", String(MEMORY_MB), "-U", "0", "-l", "127.0.0.1", "-p", "{port}",
      ...(process.getuid?.() === 0 ? ["-u", "root"] : []), // memcached refuses to run as root without -u
    ],
  };
}

function floorSpec(threads: number): ServerSpec {
  return { name: FLOOR, command: ["bun", join(REPO_ROOT, "bench/lib/floor-server.ts"), "-p", "{port}", "-t", String(threads)] };
}

function commandOutput(argv: string[]): string {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return (result.stdout.toString() + result.stderr.toString()).trim().split("\n")[0] ?? "";
}

function printMachine(servers: ServerSpec[], threads: number): void {
  console.log("## Machine\n");
  console.log(`- nproc: ${commandOutput(["nproc"])}`);
  console.log(`- bun --version: ${commandOutput(["bun", "--version"])}`);
  console.log(`- memcached -V: ${commandOutput(["memcached", "-V"])}`);
  // Other processes on a 2-core box skew numbers; the load average at start hints at that.
  console.log(`- load average at start: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`- load generator: ${commandOutput(["memcaslap", "--version"])} (${threads} thread${threads > 1 ? "s" : ""})`);
  for (const spec of servers) console.log(`- ${spec.name}: \`${spec.command.join(" ")}\``);
  console.log("");
}

async function getCounters(port: number): Promise<{ hits: number; misses: number } | undefined> {
  const s: Map<string, string> = await stats(port);
  const hits: string | undefined = s.get("get_hits");
  const misses: string | undefined = s.get("get_misses");
  return hits === undefined || misses === undefined ? undefined : { hits: Number(hits), misses: Number(misses) };
}

interface Started {
  spec: ServerSpec;
  proc: Subprocess;
  port: number;
  pinned: boolean;
  load: MemaslapLoad;
}

/** Starts a server for `workload` (pinned to core 0 where the workload is) and waits until it answers. */
async function start(workload: Workload, spec: ServerSpec, options: Options, workDir: string): Promise<Started> {
  const port: number = freePort();
  const logPath: string = join(workDir, `${spec.name}.log`);
  const pinned: boolean = workload.pinned === true && options.threads === 1;
  const proc: Subprocess = spawnLogged([...(pinned ? ["taskset", "-c", "0"] : []), ...argvFor(spec, port)], logPath, REPO_ROOT);
  await waitForMemcache(proc, port, logPath, STARTUP_TIMEOUT_MS); // a server that can't start ends the bench
  const threaded = options.threads > 1 && workload.threadedConnections !== undefined;
  const load: MemaslapLoad = threaded ? { ...workload, connections: workload.threadedConnections! } : workload;
  return { spec, proc, port, pinned, load };
}

/** Drives a started server with the workload's load for `seconds`, not measured. */
async function warm(server: Started, seconds: number, options: Options, workDir: string): Promise<void> {
  if (seconds > 0) await runMemaslap(server.port, server.load, seconds, join(workDir, "memaslap.cfg"), options.threads, server.pinned ? 1 : undefined);
}

/** One measured window on a started server: throughput, hit ratios, peak RSS and CPU per op. */
async function measureWindow(server: Started, workload: Workload, round: number, options: Options, workDir: string): Promise<Run> {
  const { spec, proc, port } = server;
  const run: Run = {
    workload: workload.name,
    server: spec.name,
    round,
    result: undefined,
    error: undefined,
    serverHitRatio: undefined,
    peakRssBytes: undefined,
    cpuPerOp: undefined,
    expectHits: workload.expectHits,
  };
  process.stderr.write(`  round ${round} ${spec.name} ... `);
  try {
    const before = await getCounters(port);
    const cpuBefore = cpuTicks(proc.pid);
    run.result = await runMemaslap(port, server.load, options.seconds, join(workDir, "memaslap.cfg"), options.threads, server.pinned ? 1 : undefined);
    run.peakRssBytes = peakRss(proc.pid);
    const cpuAfter = cpuTicks(proc.pid);
    run.cpuPerOp = cpuMicrosPerOp(cpuBefore, cpuAfter, run.result.ops);
    const after = await getCounters(port);
    if (before && after) {
      const hits: number = after.hits - before.hits;
      const lookups: number = hits + after.misses - before.misses;
      run.serverHitRatio = lookups === 0 ? undefined : hits / lookups;
    }
    process.stderr.write(`${run.result.opsPerSec} ops/s\n`);
  } catch (error) {
    run.error = error instanceof Error ? error.message : String(error);
    process.stderr.write(`FAILED\n`);
  }
  return run;
}

/**
 * One run on a freshly started server, stopped afterwards. Fresh per run because a
 * memcached whose 64 MB is full from an earlier run answers a new run's stores with
 * "SERVER_ERROR out of memory storing object" and misses (seen with 4 KB values).
 */
async function measure(workload: Workload, spec: ServerSpec, round: number, options: Options, workDir: string): Promise<Run> {
  const server = await start(workload, spec, options, workDir);
  try {
    await warm(server, options.warmup, options, workDir);
    return await measureWindow(server, workload, round, options, workDir);
  } finally {
    await stop(server.proc);
  }
}

/**
 * --interleave: the servers start once and are warmed one at a time, then take turns under the
 * load in --interleave windows (the order reversed every other window), one loaded at a time. The
 * machine's speed drifts by ±20 % from one minute to the next, and a fresh server per round
 * measured one after the other takes that drift into its ratio; windows of a few seconds
 * alternating between warm servers spread it over both alike. Only for workloads that evict
 * (their servers may fill up between windows).
 */
async function measureInterleaved(workload: Workload, servers: ServerSpec[], options: Options, workDir: string): Promise<Run[]> {
  const started: Started[] = [];
  const runs: Run[] = [];
  try {
    for (const spec of servers) started.push(await start(workload, spec, options, workDir));
    for (const server of started) await warm(server, options.warmup, options, workDir);
    for (let round = 1; round <= options.interleave; round++) {
      const order: Started[] = round % 2 === 1 ? started : [...started].reverse();
      for (const server of order) runs.push(await measureWindow(server, workload, round, options, workDir));
    }
  } finally {
    for (const server of started) await stop(server.proc);
  }
  return runs;
}

/** VmHWM of a process, from /proc (undefined where there is none). */
function peakRss(pid: number): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return kb === null ? undefined : Number(kb[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Why a run's number can't be trusted, or undefined if it looks sound. */
function suspicion(run: Run): string | undefined {
  if (run.error) return `failed: ${run.error}`;
  if (run.server === FLOOR) return undefined; // answers every get with a miss: nothing to check
  const r = run.result!;
  const problems: string[] = [];
  if (run.serverHitRatio === undefined) problems.push("no get_hits/get_misses in stats");
  else if (run.expectHits && run.serverHitRatio < MIN_HIT_RATIO) problems.push(`server-side hit ratio ${percent(run.serverHitRatio)}`);
  const clientHits: number | undefined = clientHitRatio(r);
  if (run.expectHits && (clientHits === undefined || clientHits < MIN_HIT_RATIO)) problems.push(`client-side hit ratio ${percent(clientHits)}`);
  if (r.verifyFailed > 0) problems.push(`${r.verifyFailed} values failed verification`);
  if (r.anomalies > 0) problems.push(`${r.anomalies} unexpected output lines, first: ${JSON.stringify(r.firstAnomaly)}`);
  return problems.length ? problems.join("; ") : undefined;
}

/** A server's rate on a workload: its best round, or with --interleave the mean of its windows. */
function rate(runs: Run[], workload: string, server: string, interleaved: boolean): number | undefined {
  const ops: number[] = runs.filter((r) => r.workload === workload && r.server === server && r.result).map((r) => r.result!.opsPerSec);
  if (ops.length === 0) return undefined;
  return interleaved ? Math.round(ops.reduce((sum, n) => sum + n, 0) / ops.length) : Math.max(...ops);
}

/** Whether --interleave applies to a workload: only where eviction is the point. */
const interleaves = (workload: Workload, options: Options): boolean => options.interleave > 0 && !workload.expectHits;

/**
 * Each round's ratio (the two servers run back to back in it) and their median: the machine's
 * speed drifts by more than a change is worth between rounds, and the median of ratios taken a few
 * seconds apart leans less on one lucky round than the ratio of the two bests does.
 */
function roundRatios(runs: Run[], workload: string, server: string): string {
  const ratios: number[] = [];
  for (const run of runs) {
    if (run.workload !== workload || run.server !== server || !run.result) continue;
    const theirs = runs.find((r) => r.workload === workload && r.server === "memcached" && r.round === run.round)?.result;
    if (theirs) ratios.push(run.result.opsPerSec / theirs.opsPerSec);
  }
  if (ratios.length === 0) return "n/a";
  ratios.sort((a, b) => a - b);
  const mid = ratios.length >> 1;
  const median = ratios.length % 2 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
  return ratios.length === 1 ? median.toFixed(2) : `${median.toFixed(2)} (${ratios[0].toFixed(2)}–${ratios[ratios.length - 1].toFixed(2)})`;
}

const mib = (bytes: number | undefined): string => (bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const fmt = (n: number | undefined): string => (n === undefined ? "failed" : n.toLocaleString("en-US"));

/** Prints the tables; returns whether every run looked sound. */
function printReport(runs: Run[], options: Options, workloads: Workload[]): boolean {
  const { rounds, warmup } = options;
  const floor: boolean = runs.some((r) => r.server === FLOOR);
  console.log(`## Throughput (best of ${rounds} rounds per server, each after a ${warmup} s warm-up not counted)\n`);
  if (workloads.some((w) => interleaves(w, options))) {
    console.log(`Write-heavy rows interleaved (--interleave): each server started once and warmed for ${warmup} s, then the servers took turns in ${options.interleave} windows of ${options.seconds} s; ops/s are the means of the windows, "round" ratios per window.\n`);
  }
  console.log(`| workload | memcached ops/s | cacheismo ops/s | ratio (ours/memcached) | median of round ratios (range) |${floor ? " bun floor ops/s | floor/memcached |" : ""}`);
  console.log(`| --- | ---: | ---: | ---: | ---: |${floor ? " ---: | ---: |" : ""}`);
  const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b ? (a / b).toFixed(2) : "n/a");
  for (const w of workloads) {
    const interleaved: boolean = interleaves(w, options);
    const theirs: number | undefined = rate(runs, w.name, "memcached", interleaved);
    const ours: number | undefined = rate(runs, w.name, "cacheismo", interleaved);
    const suspect: boolean = runs.some((r) => r.workload === w.name && suspicion(r) !== undefined);
    const floorRate: number | undefined = rate(runs, w.name, FLOOR, interleaved);
    const floorCells: string = floor ? ` ${fmt(floorRate)} | ${ratio(floorRate, theirs)} |` : "";
    console.log(`| ${w.name} | ${fmt(theirs)} | ${fmt(ours)} | ${ratio(ours, theirs)}${suspect ? " (suspect, see checks)" : ""} | ${roundRatios(runs, w.name, "cacheismo")} |${floorCells}`);
  }

  console.log("\n## Per-run checks\n");
  console.log("| workload | server | round | ops/s | server hit ratio | client hit ratio | verify failed | unexpected lines | peak RSS | CPU µs/op user + sys |");
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const run of runs) {
    const r: MemaslapResult | undefined = run.result;
    const clientHits: string = r ? percent(clientHitRatio(r)) : "-";
    console.log(`| ${run.workload} | ${run.server} | ${run.round} | ${fmt(r?.opsPerSec)} | ${percent(run.serverHitRatio)} | ${clientHits} | ${r?.verifyFailed ?? "-"} | ${r?.anomalies ?? "-"} | ${mib(run.peakRssBytes)} | ${run.cpuPerOp ? `${run.cpuPerOp.user.toFixed(2)} + ${run.cpuPerOp.system.toFixed(2)}` : "n/a"} |`);
  }

  const warnings: string[] = runs.flatMap((run) => {
    const why: string | undefined = suspicion(run);
    return why ? [`- ${run.workload} / ${run.server} / round ${run.round}: ${why}`] : [];
  });
  if (warnings.length) console.log(`\n## Warnings\n\n${warnings.join("\n")}`);
  return warnings.length === 0;
}

async function main(): Promise<void> {
  const options = parseOptions();
  const servers: ServerSpec[] = [memcachedSpec(options.threads), targetSpec(options.target, options.threads), ...(options.floor ? [floorSpec(options.threads)] : [])];
  printMachine(servers, options.threads);

  const workDir: string = mkdtempSync(join(tmpdir(), "cacheismo-bench-"));
  const runs: Run[] = [];
  let clean: boolean = false;
  try {
    const workloads: Workload[] = WORKLOADS.filter((w) => w.name.includes(options.only));
    for (const workload of workloads) {
      process.stderr.write(`${workload.name}\n`);
      if (interleaves(workload, options)) {
        runs.push(...(await measureInterleaved(workload, servers, options, workDir)));
        continue;
      }
      for (let round = 1; round <= options.rounds; round++) {
        // Alternate who goes first so slow drift (thermal, noisy neighbours) hits both alike.
        const order: ServerSpec[] = round % 2 === 1 ? servers : [...servers].reverse();
        for (const spec of order) runs.push(await measure(workload, spec, round, options, workDir));
      }
    }
    clean = printReport(runs, options, workloads);
  } finally {
    await killAll();
    if (clean) rmSync(workDir, { recursive: true, force: true });
    else console.error(`\nserver logs kept in ${workDir}`);
  }
}

killAllOnSignal();
await main();
