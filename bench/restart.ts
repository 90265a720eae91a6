// Warm restart cost: fill an arena with 1 KB values, stop with SIGTERM (the memory file is saved),
// start again (it is restored), and report save and restore times, MB/s and peak RSS of each.
// What it buys: before the stop a look-aside client (Zipf-popular keys, misses set) runs for
// --warm-seconds; after the restart the same load runs for 10 s, and again on a cold server, and
// the hit ratios of those two 10 s windows are compared.
//
//   bun run bench/restart.ts [--memory-mb 1024] [--file /dev/shm/cacheismo-bench.mem] [--threads 1] [--warm-seconds 20] [executable]
//
// Times are the server's own (its "saved"/"restored the memory file" log lines); RSS is sampled
// from /proc every 10 ms while the process saves or restores.
import { readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { Zipf } from "./hitrate/zipf.ts";
import { type LookAsideLoad, type LookAsideResult, runLookAside } from "./lib/look-aside.ts";
import { freePort, killAll, killAllOnSignal, logTail, spawnLogged, waitForMemcache } from "./lib/proc.ts";

const ROOT = resolve(import.meta.dir, "..");
const LOG = "/tmp/cacheismo-restart-bench.log";
const VALUE_BYTES = 1024;
const BATCH = 2000;
const MEASURE_SECONDS = 10;

const { values, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    "memory-mb": { type: "string", default: "1024" },
    file: { type: "string", default: "/dev/shm/cacheismo-bench.mem" },
    threads: { type: "string", default: "1" },
    "warm-seconds": { type: "string", default: "20" },
  },
  allowPositionals: true,
});
const memoryMb = Number(values["memory-mb"]);
const file = values.file!;
const command = positionals.length > 0 ? [resolve(positionals[0])] : ["bun", "run", resolve(ROOT, "src/main.ts")];

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Peak RSS of proc until `done` settles. */
async function peakRssWhile(proc: Subprocess, done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    peak = Math.max(peak, rssMb(proc.pid));
    await Bun.sleep(10);
  }
  return peak;
}

async function start(port: number, memoryFile = file): Promise<Subprocess> {
  const proc = spawnLogged([...command, "-p", String(port), "-m", String(memoryMb), "-t", values.threads!, "-v", ...(memoryFile ? ["--memory-file", memoryFile] : [])], LOG, ROOT);
  return proc;
}

/** Twice as many keys as the arena holds, Zipf 1.0: the cache holds the popular part. */
const lookAside: LookAsideLoad = {
  keys: 2 * Math.ceil((memoryMb * 1024 * 1024) / (VALUE_BYTES + 64)),
  alpha: 1.0,
  valueBytes: VALUE_BYTES,
  keysPerGet: 16,
  seed: 7,
};
const zipf = new Zipf(lookAside.keys, lookAside.alpha);
const ratio = (r: LookAsideResult): string => `${((100 * r.hits) / r.gets).toFixed(2)} % of ${r.gets.toLocaleString("en-US")} gets`;

/** Sets keys with noreply in pipelined batches until the arena has evicted (is full); returns items set. */
async function fill(port: number): Promise<number> {
  let pending: (() => void) | null = null;
  let received = "";
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        received += Buffer.from(chunk).toString("latin1");
        if (received.includes("END\r\n") && pending) pending();
      },
    },
  });
  const value = "v".repeat(VALUE_BYTES);
  const target = Math.ceil((memoryMb * 1024 * 1024) / (VALUE_BYTES + 64)) + BATCH;
  let n = 0;
  while (n < target) {
    let batch = "";
    for (let i = 0; i < BATCH; i++, n++) batch += `set key:${n} 0 0 ${VALUE_BYTES} noreply\r\n${value}\r\n`;
    socket.write(batch);
    // A round trip per batch keeps the socket's buffer bounded.
    received = "";
    await new Promise<void>((r) => {
      pending = r;
      socket.write("stats slabs\r\n");
    });
  }
  socket.end();
  return n;
}

function logged(pattern: RegExp): Record<string, string> {
  const line = readFileSync(LOG, "utf8").split("\n").findLast((l) => pattern.test(l));
  if (!line) throw new Error(`no log line ${pattern}:\n${logTail(LOG)}`);
  return Object.fromEntries([...line.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((m) => [m[1], m[2]]));
}

killAllOnSignal();
rmSync(LOG, { force: true });
rmSync(file, { force: true });
try {
  const port = freePort();
  const first = await start(port);
  await waitForMemcache(first, port, LOG, 15_000);
  const sets = await fill(port);
  const warmed = await runLookAside(port, { ...lookAside, seed: 1 }, Number(values["warm-seconds"]), zipf);
  const runningRss = rssMb(first.pid);
  first.kill("SIGTERM");
  const savePeak = await peakRssWhile(first, first.exited);
  const saved = logged(/saved the memory file/);
  const fileMb = Number(saved.bytes) / 1024 / 1024;

  const second = await start(port);
  const ready = waitForMemcache(second, port, LOG, 60_000);
  const restorePeak = await peakRssWhile(second, ready);
  const restored = logged(/restored the memory file/);
  const afterRestart = await runLookAside(port, lookAside, MEASURE_SECONDS, zipf);
  second.kill("SIGTERM");
  await second.exited;
  rmSync(file, { force: true });

  const cold = await start(port, "");
  await waitForMemcache(cold, port, LOG, 15_000);
  const afterColdStart = await runLookAside(port, lookAside, MEASURE_SECONDS, zipf);
  cold.kill("SIGTERM");
  await cold.exited;
  rmSync(file, { force: true });

  const saveMs = Number(saved.ms);
  const restoreMs = Number(restored.ms);
  console.log(`-m ${memoryMb}, ${VALUE_BYTES} B values, ${sets} sets, file ${file}`);
  console.log(`items saved ${saved.items}, restored ${restored.items}; file ${fileMb.toFixed(1)} MiB`);
  console.log(`save    ${saveMs} ms  ${(fileMb / (saveMs / 1000)).toFixed(0)} MiB/s  peak RSS ${savePeak.toFixed(0)} MiB (running: ${runningRss.toFixed(0)} MiB)`);
  console.log(`restore ${restoreMs} ms  ${(fileMb / (restoreMs / 1000)).toFixed(0)} MiB/s  peak RSS ${restorePeak.toFixed(0)} MiB`);
  console.log(`look-aside load (${lookAside.keys.toLocaleString("en-US")} keys, Zipf ${lookAside.alpha}, ${lookAside.keysPerGet}-key gets, misses set):`);
  console.log(`  before the stop, ${values["warm-seconds"]} s: ${ratio(warmed)}`);
  console.log(`  first ${MEASURE_SECONDS} s after the warm restart: ${ratio(afterRestart)}`);
  console.log(`  first ${MEASURE_SECONDS} s after a cold start:    ${ratio(afterColdStart)}`);
} finally {
  await killAll();
}
