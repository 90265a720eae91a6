// Paired A/B: two server builds on the same core at the same time, under the same load.
//
//   bun run bench/paired.ts --b "bun run /tmp/exp/src/main.ts -p {port} -m 64 -t 1" [--a "<command>"]
//       [--value-bytes N] [--set-ratio F] [--seconds N] [--warmup N] [--rounds N]
//
// This machine's speed drifts by ±20 % from minute to minute, so two builds measured one after
// the other differ by more than most changes do. Here both servers are pinned to core 0 and
// both memcaslap loads to core 1, started together: whatever the machine does, it does to both,
// and the ratio B/A of their throughputs is what the change is worth (two copies of the same
// build give 0.99-1.01). Each round starts both servers fresh, warms both for --warmup seconds
// (not counted: the JIT compiles the hot code first) and measures --seconds. Default load: the
// write-heavy row of bench/throughput.ts (90 % sets, 64-byte keys, 4 KB values, -m 64).
// A shared core is not a lone server's setting: read the ratio, not the rates.
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

async function round(index: number): Promise<number> {
  const servers = [args.a, args.b as string].map((command, i) => {
    const port = freePort();
    const argv = ["taskset", "-c", String(SERVER_CORE), "sh", "-c", `exec ${command.replaceAll("{port}", String(port))}`];
    const log = join(dir, `server-${index}-${i}.log`);
    return { port, log, proc: spawnLogged(argv, log, REPO_ROOT) };
  });
  try {
    await Promise.all(servers.map((s) => waitForMemcache(s.proc, s.port, s.log, 15_000)));
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

console.log(`A: ${args.a}\nB: ${args.b}\nload: ${load.valueBytes} B values, ${load.setRatio * 100} % sets, ${load.connections} connections each, ${seconds} s after ${warmup} s warm-up`);
const ratios: number[] = [];
try {
  for (let i = 1; i <= Number(args.rounds); i++) ratios.push(await round(i));
} finally {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
}
const mean = ratios.reduce((sum, r) => sum + r, 0) / ratios.length;
console.log(`B/A over ${ratios.length} rounds: mean ${mean.toFixed(3)}, min ${Math.min(...ratios).toFixed(3)}, max ${Math.max(...ratios).toFixed(3)}`);
