// Runs Debian's memcaslap (libmemcached's memaslap) and parses its summary.
//
// How memaslap loads keys: each connection owns a sliding window of keys and only
// issues a get for a key it has already set in this run (the first ops on a window
// are sets), so a correct server that holds the live window answers every get with
// a hit: misses mean the server lost or evicted live data.
import { writeFileSync } from "node:fs";
import { track } from "./proc.ts";

export interface MemaslapLoad {
  valueBytes: number;
  keyBytes: number;
  /** Fraction of ops that are sets; the rest are gets. */
  setRatio: number;
  /** Keys per get request (memaslap -d); 1 = single get. */
  keysPerGet: number;
  /** Concurrent connections (memaslap -c), each non-pipelined. */
  connections: number;
}

export interface MemaslapResult {
  /** memaslap's TPS: gets count once per key, so a 16-key multiget counts 16. */
  opsPerSec: number;
  /** Operations over the run, counted the same way. */
  ops: number;
  /** Keys memaslap asked for, and how many of them came back missing. */
  clientGets: number;
  clientGetMisses: number;
  verifyFailed: number;
  /** Output lines that are not part of the summary (e.g. "<12 SERVER_ERROR ..."). */
  anomalies: number;
  firstAnomaly: string | undefined;
}

/** memaslap config file: key/value size distributions and the set(0)/get(1) mix. */
function writeConfig(path: string, load: MemaslapLoad): void {
  const lines: string[] = [
    "key",
    `${load.keyBytes} ${load.keyBytes} 1`,
    "value",
    `${load.valueBytes} ${load.valueBytes} 1`,
    "cmd",
    `0 ${load.setRatio}`,
    `1 ${1 - load.setRatio}`,
  ];
  writeFileSync(path, lines.join("\n") + "\n");
}

function counter(output: string, name: string): number {
  const match: RegExpMatchArray | null = output.match(new RegExp(`^${name}: (\\d+)$`, "m"));
  return match ? Number(match[1]) : 0;
}

/**
 * Drives 127.0.0.1:port for `seconds` with `threads` memaslap threads (one by default: the server
 * under test gets the other core), on core `cpu` when given. Killed after seconds + 15 s if the
 * server hangs it.
 */
export async function runMemaslap(port: number, load: MemaslapLoad, seconds: number, configPath: string, threads = 1, cpu?: number): Promise<MemaslapResult> {
  writeConfig(configPath, load);
  const argv: string[] = [
    ...(cpu === undefined ? [] : ["taskset", "-c", String(cpu)]),
    "memcaslap",
    "--servers", `127.0.0.1:${port}`,
    "--cfg_cmd", configPath,
    "--time", `${seconds}s`,
    "--threads", String(threads),
    "--concurrency", String(load.connections),
    "--win_size", "1k", // keys per connection; memaslap's minimum
    "--division", String(load.keysPerGet),
    "--verify", "0.01", // compare 1% of returned values with what was set
  ];
  const proc = track(Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const killer: Timer = setTimeout(() => proc.kill("SIGKILL"), (seconds + 15) * 1000);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(killer);

  const output: string = stdout + stderr;
  const summary: RegExpMatchArray | null = output.match(/^Run time: \S+ Ops: (\d+) TPS: (\d+)/m);
  if (proc.signalCode === "SIGKILL") throw new Error(`memcaslap hung past ${seconds + 15} s; output tail:\n${output.slice(-1000)}`);
  if (!summary) throw new Error(`memcaslap exited ${proc.exitCode} without a summary; output tail:\n${output.slice(-1000)}`);

  // Summary lines look like "name: value" or start with "Run time:"; anything else is the server misbehaving.
  const anomalyLines: string[] = output
    .split("\n")
    .filter((line) => line.trim() !== "" && !/^[\w ]+: /.test(line));
  return {
    opsPerSec: Number(summary[2]),
    ops: Number(summary[1]),
    clientGets: counter(output, "cmd_get"),
    clientGetMisses: counter(output, "get_misses"),
    verifyFailed: counter(output, "verify_failed"),
    anomalies: anomalyLines.length,
    firstAnomaly: anomalyLines[0],
  };
}
