/**
 * The differential test (bench/differential.ts) at CI size: the same seeded stream of pipelined
 * requests to Debian's memcached and to cacheismo, every reply byte-identical once cas uniques
 * are mapped. Needs memcached installed (CI installs it); fails saying so when it is not.
 */
import { expect, test } from "bun:test";
import { formatReport } from "../bench/differential.ts";
import { type DifferentialReport, runDifferential } from "../bench/robustness/differential-run.ts";
import { defaultServerTemplate } from "../bench/robustness/process.ts";

const OPS: number = 25_000;
/** What every seed's stream must have exercised, so a passing run means something. */
const MUST_HAPPEN: readonly string[] = [
  "set STORED",
  "set noreply",
  "set SERVER_ERROR object too large for cache",
  "add NOT_STORED",
  "replace STORED",
  "append STORED",
  "prepend NOT_STORED",
  "cas STORED",
  "cas EXISTS",
  "cas NOT_FOUND",
  "gets hit",
  "gat hit",
  "get miss",
  "incr <n>",
  "decr <n>",
  "incr CLIENT_ERROR cannot increment or decrement non-numeric value",
  "incr CLIENT_ERROR invalid numeric delta argument",
  "delete DELETED",
  "touch TOUCHED",
  "flush_all OK",
];

for (const seed of [1, 2, 3]) {
  test(
    `seed ${seed}: ${OPS.toLocaleString("en")} pipelined requests get byte-identical replies from memcached and cacheismo`,
    async () => {
      const report: DifferentialReport = await runDifferential({ ops: OPS, seconds: 60, seed, server: defaultServerTemplate() });
      console.log(formatReport(report));
      expect(report.divergence).toBeUndefined();
      expect(report.ops).toBe(OPS + 1); // and the final read of every key
      expect(MUST_HAPPEN.filter((outcome) => !report.outcomes.has(outcome))).toEqual([]);
    },
    120_000,
  );
}
