import { expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { existsSync, readFileSync } from "node:fs";
import { createArenaMemory } from "../src/store/arena.ts";

const MB = 1024 * 1024;
const THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled";
const thpOffered = existsSync(THP_MODE) && !readFileSync(THP_MODE, "utf8").includes("[never]");

/** kB of AnonHugePages in the mappings of /proc/self/smaps that overlap [start, end). */
function hugePagesKbIn(start: number, end: number): number {
  let kb = 0;
  let overlaps = false;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      overlaps = parseInt(range[1], 16) < end && parseInt(range[2], 16) > start;
      continue;
    }
    const huge = /^AnonHugePages:\s+(\d+) kB/.exec(line);
    if (huge && overlaps) kb += Number(huge[1]);
  }
  return kb;
}

test.skipIf(!thpOffered)("the arena's memory is backed by 2 MiB pages where the kernel offers them", () => {
  const memory = createArenaMemory(16 * MB);
  const segment = memory.segments[0];
  new Uint8Array(segment).fill(1);
  const start = ptr(new Uint8Array(segment));
  // Only whole 2 MiB pages inside the buffer can be huge: at least 14 of 16 MiB.
  expect(hugePagesKbIn(start, start + segment.byteLength)).toBeGreaterThanOrEqual(14 * 1024);
});
