// Run as its own process (fresh memory: a buffer that reuses pages another test already touched
// keeps their 4 KiB pages): creates an arena of argv[2] MiB, fills it when argv[3] is "fill", and
// prints the kB of AnonHugePages /proc/self/smaps shows inside it.
import { ptr } from "bun:ffi";
import { readFileSync } from "node:fs";
import { createArenaMemory } from "../../src/store/arena.ts";

const segment = createArenaMemory(Number(process.argv[2]) * 1024 * 1024).segments[0];
if (process.argv[3] === "fill") new Uint8Array(segment).fill(1);
const start = ptr(new Uint8Array(segment));
const end = start + segment.byteLength;

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
console.log(kb);
