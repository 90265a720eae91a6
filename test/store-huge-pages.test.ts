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
  // Whole 2 MiB pages inside the buffer but the first and last: at least 10 of 16 MiB.
  expect(hugePagesKbIn(start, start + segment.byteLength)).toBeGreaterThanOrEqual(10 * 1024);
});

test.skipIf(!thpOffered)("an empty arena keeps its first and last 2 MiB on small pages (its RSS before any item)", () => {
  const memory = createArenaMemory(64 * MB);
  const segment = memory.segments[0];
  const start = ptr(new Uint8Array(segment));
  // reset() wrote the free list's tags at both ends; nothing between is touched yet.
  expect(hugePagesKbIn(start, start + segment.byteLength)).toBe(0);
});
