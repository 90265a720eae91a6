// Differential test against Debian's memcached: the same seeded stream of pipelined requests to
// both servers, every reply byte-identical once cas uniques are mapped
// (bench/robustness/differential-run.ts). Prints what the stream exercised; on the first
// divergence prints it with the requests that led there, and exits 1.
//
//   bun run bench/differential.ts --ops 1000000 --seconds 600
//   bun run bench/differential.ts [--ops N] [--seconds N] [--seed N] [--server "<command with {port}>"]
//
// --server defaults to cacheismo (CACHEISMO_BIN when set).
import { parseArgs } from "node:util";
import { killAllOnSignal } from "./lib/proc.ts";
import { type DifferentialOptions, type DifferentialReport, runDifferential } from "./robustness/differential-run.ts";
import { defaultServerTemplate } from "./robustness/process.ts";

export function formatReport(r: DifferentialReport): string {
  const outcomes: string = [...r.outcomes].sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, n]) => `${k} ${n}`).join(", ");
  return [
    `seed ${r.seed}: ${r.ops} requests in ${r.batches} batches, ${(r.bytesSent / 1024 / 1024).toFixed(1)} MB, ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `outcomes: ${outcomes}`,
    r.divergence ?? "no divergence",
  ].join("\n");
}

function parseOptions(argv: string[]): DifferentialOptions {
  const { values } = parseArgs({
    args: argv,
    options: { ops: { type: "string" }, seconds: { type: "string" }, seed: { type: "string" }, server: { type: "string" } },
  });
  const number = (raw: string | undefined, fallback: number, name: string): number => {
    const n: number = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
    return n;
  };
  return {
    ops: number(values.ops, 200_000, "ops"),
    seconds: number(values.seconds, 300, "seconds"),
    seed: number(values.seed, 1, "seed"),
    server: values.server ?? defaultServerTemplate(),
  };
}

if (import.meta.main) {
  killAllOnSignal();
  const options: DifferentialOptions = parseOptions(Bun.argv.slice(2));
  console.log(`differential: up to ${options.ops} requests or ${options.seconds} s, seed ${options.seed}, cacheismo: ${options.server}`);
  const report: DifferentialReport = await runDifferential(options);
  console.log(formatReport(report));
  process.exit(report.divergence === undefined ? 0 : 1);
}
