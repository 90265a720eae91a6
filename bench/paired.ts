// Paired A/B: two server builds on the same core at the same time, under the same load.
//
//   bun run bench/paired.ts --b "bun run /tmp/exp/src/main.ts -p {port} -m 64 -t 1" [--a "<command>"]
//       [--value-bytes N] [--set-ratio F] [--seconds N] [--warmup N] [--rounds N] [--interleave N]
//
// This machine's speed drifts by ±20 % from minute to minute, so two builds measured one after
// the other differ by more than most changes do. Here both servers are pinned to core 0 and
// both memcaslap loads to core 1, started together: whatever the machine does, it does to both,
// and the ratio B/A of their throughputs is what the change is worth (two copies of the same
// build give 0.99-1.01). Each round starts both servers fresh, warms both for --warmup seconds
// (not counted: the JIT compiles the hot code first) and measures --seconds. Default load: the
// write-heavy row of bench/throughput.ts (90 % sets, 64-byte keys, 4 KB values, -m 64).
// A shared core is not a lone server's setting: read the ratio, not the rates.
//
//   --interleave N: the lone server's setting instead. Both servers start once on core 0, each is
//   warmed alone, then they take turns under the load for N windows of --seconds each (A B, B A,
//   A B, ...), only one loaded at a time: the drift reaches both within seconds, the caches and
//   the core are each one's own while it is measured. Reports each window pair's B/A and the
//   ratio of the totals. Its noise on this machine (the same method by a shell script, 10 windows
//   of 3 s): two memcacheds gave 1.007, two copies of one cacheismo build 1.040; single window
//   pairs 0.86-1.37.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { runMemaslap, type MemaslapLoad } from "./lib/memaslap.ts";
import { freePort, killAll, killAllOnSignal, spawnLogged, stop, waitForMemcache } from "./lib/proc.ts";

const REPO_ROOT: string = resolve(import.meta.dir, "..");
const SERVER_CORE = 0;
const LOAD_CORE = 1;

const { values: args } = parseArgs({
  options: {
    a: { type: "string", default: "bun run src/main.ts -p {port} -m 64 -t 1" },
    b: { type: "string" },
    "value-bytes": { type: "string", default: "4096" },
    "set-ratio": { type: "string", default: "0.9" },
    seconds: { type: "string", default: "8" },
    warmup: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
    interleave: { type: "string" },
  },
});
if (args.b === undefined) throw new Error('--b "<server command with {port}>" is required');

const load: MemaslapLoad = {
  valueBytes: Number(args["value-bytes"]),
  keyBytes: 64,
  setRatio: Number(args["set-ratio"]),
  keysPerGet: 1,
  connections: 32,
};
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const dir: string = mkdtempSync(join(tmpdir(), "paired-"));
killAllOnSignal();

/** Starts A and B pinned to the server core and waits until both answer. */
async function startPair(tag: string) {
  const servers = [args.a, args.b as string].map((command, i) => {
    const port = freePort();
    const argv = ["taskset", "-c", String(SERVER_CORE), "sh", "-c", `exec ${command.replaceAll("{port}", String(port))}`];
    const log = join(dir, `server-${tag}-${i}.log`);
    return { port, log, proc: spawnLogged(argv, log, REPO_ROOT) };
  });
  await Promise.all(servers.map((s) => waitForMemcache(s.proc, s.port, s.log, 15_000)));
  return servers;
}

async function round(index: number): Promise<number> {
  const servers = await startPair(String(index));
  try {
    const drive = (secs: number, tag: string) =>
      Promise.all(servers.map((s, i) => runMemaslap(s.port, load, secs, join(dir, `load-${tag}-${i}.cfg`), 1, LOAD_CORE)));
    if (warmup > 0) await drive(warmup, "warmup");
    const [a, b] = await drive(seconds, "run");
    const ratio = b.opsPerSec / a.opsPerSec;
    console.log(`round ${index}: A ${a.opsPerSec.toLocaleString("en-US")} ops/s, B ${b.opsPerSec.toLocaleString("en-US")} ops/s, B/A ${ratio.toFixed(3)}`);
    return ratio;
  } finally {
    await Promise.all(servers.map((s) => stop(s.proc)));
  }
}

/** The --interleave mode: one warm pair, loaded one at a time in alternating windows. */
async function interleaved(windows: number): Promise<void> {
  const servers = await startPair("interleaved");
  try {
    const drive = (i: number, secs: number, tag: string) => runMemaslap(servers[i].port, load, secs, join(dir, `load-${tag}-${i}.cfg`), 1, LOAD_CORE);
    for (const i of [0, 1]) if (warmup > 0) await drive(i, warmup, "warmup");
    const totals = [0, 0];
    const pairs: string[] = [];
    for (let w = 0; w < windows; w++) {
      const rates = [0, 0];
      for (const i of w % 2 === 0 ? [0, 1] : [1, 0]) rates[i] = (await drive(i, seconds, `window-${w}`)).opsPerSec;
      totals[0] += rates[0];
      totals[1] += rates[1];
      pairs.push((rates[1] / rates[0]).toFixed(2));
    }
    console.log(`B/A per window pair: ${pairs.join(", ")}`);
    const fmt = (total: number) => Math.round(total / windows).toLocaleString("en-US");
    console.log(`A ${fmt(totals[0])} ops/s, B ${fmt(totals[1])} ops/s on average; B/A ${(totals[1] / totals[0]).toFixed(3)} over ${windows} windows of ${seconds} s each`);
  } finally {
    await Promise.all(servers.map((s) => stop(s.proc)));
  }
}

console.log(`A: ${args.a}\nB: ${args.b}\nload: ${load.valueBytes} B values, ${load.setRatio * 100} % sets, ${load.connections} connections each, ${seconds} s after ${warmup} s warm-up`);
const ratios: number[] = [];
try {
  if (args.interleave !== undefined) await interleaved(Number(args.interleave));
  else for (let i = 1; i <= Number(args.rounds); i++) ratios.push(await round(i));
} finally {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
}
if (ratios.length > 0) {
  const mean = ratios.reduce((sum, r) => sum + r, 0) / ratios.length;
  console.log(`B/A over ${ratios.length} rounds: mean ${mean.toFixed(3)}, min ${Math.min(...ratios).toFixed(3)}, max ${Math.max(...ratios).toFixed(3)}`);
}
