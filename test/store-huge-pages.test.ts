import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";

const THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled";
const thpOffered = existsSync(THP_MODE) && !readFileSync(THP_MODE, "utf8").includes("[never]");

/** kB of 2 MiB pages inside a fresh process's arena of `mb` MiB (test/helpers/arena-huge-pages.ts). */
function hugePagesKb(mb: number, fill: boolean): number {
  const run = Bun.spawnSync(["bun", `${import.meta.dir}/helpers/arena-huge-pages.ts`, String(mb), fill ? "fill" : "empty"]);
  if (run.exitCode !== 0) throw new Error(run.stderr.toString());
  return Number(run.stdout.toString().trim());
}

test.skipIf(!thpOffered)("the arena's memory is backed by 2 MiB pages where the kernel offers them", () => {
  // Whole 2 MiB pages inside the buffer but the first and last: at least 10 of 16 MiB.
  expect(hugePagesKb(16, true)).toBeGreaterThanOrEqual(10 * 1024);
});

test.skipIf(!thpOffered)("an empty arena keeps its first and last 2 MiB on small pages (its RSS before any item)", () => {
  // reset() wrote the free list's tags at both ends; nothing between is touched yet.
  expect(hugePagesKb(64, false)).toBe(0);
});
