/**
 * Gives back the pages of the executable's machine code that the server no longer runs.
 *
 * Bun's executable holds 80 MiB of code (the engine, its compilers, the transpiler, the bundler,
 * npm, the test runner…), and starting up touches 27 MiB of it, which stays in the process's RSS
 * for good: the largest part of an idle server's 42 MiB. Serving requests needs a fraction of it.
 * madvise(MADV_DONTNEED) on the executable's code mapping unmaps those pages from this process;
 * the kernel keeps them in its page cache, and a page the server runs again comes back on its next
 * touch (a minor fault, no disk read). Measured at -m 64 under a 4 KB write flood: code pages
 * 40 -> 30 MB, idle RSS 42 -> 18 MB. That is room under the RSS ceiling the server's collections
 * steer by (src/server.ts), taken back there: the ceiling is 8 MiB lower, and collections still
 * run less often than before the trim.
 * Refaulting is cheap: trimming every 2 s costs about 1,600 minor faults per trim under a 4 KB
 * write flood (36,213 against 19,893 faults in 20 s for trims every 10 s, about 0.1 % of the
 * server's time), and the lower RSS buys rarer collections: 1.014, 1.009, 1.011 times the sets of
 * the 10 s build in paired runs (bench/paired.ts; every second against never: 1.020, 1.029).
 *
 * Only mappings that are the executable's code (r-xp, the executable's path) are advised: their
 * pages are never written (no text relocations; only a debugger's breakpoints would be, and
 * they would be dropped), so what comes back is what was there.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { MADV_DONTNEED, madvise } from "./madvise.ts";

/** Time between two trims: the code that startup, JIT warm-up and rare paths ran goes at the next one. */
const TRIM_INTERVAL_MS = 2_000;

const CODE_MAPPING = /^([0-9a-f]+)-([0-9a-f]+) r-xp [0-9a-f]+ \S+ \d+\s+(.+)$/gm;

/** Resident file-backed bytes of this process (RssFile). */
function residentFileBytes(): number {
  return Number(/RssFile:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "latin1"))?.[1] ?? 0) * 1024;
}

/**
 * The executable's code mappings as [address, length] pairs; empty where /proc cannot be read. They
 * stay where they are for the life of the process, so they are looked up once.
 */
function codeMappings(): Array<[number, number]> {
  let maps: string;
  let executable: string;
  try {
    maps = readFileSync("/proc/self/maps", "latin1");
    executable = readlinkSync("/proc/self/exe");
  } catch {
    return [];
  }
  const mappings: Array<[number, number]> = [];
  for (const [, start, end, path] of maps.matchAll(CODE_MAPPING)) {
    if (path !== executable) continue;
    const from = parseInt(start, 16);
    mappings.push([from, parseInt(end, 16) - from]);
  }
  return mappings;
}

/** Drops the resident pages of `mappings`; whether any could be advised. */
function dropPages(mappings: Array<[number, number]>): boolean {
  let advised = false;
  for (const [address, length] of mappings) if (madvise!(address, length, MADV_DONTNEED) === 0) advised = true;
  return advised;
}

/**
 * Drops the executable's resident code pages. Returns the resident bytes given back, or null where
 * that cannot be done (no madvise, no code mapping found).
 */
export function trimCodePages(mappings = codeMappings()): number | null {
  if (madvise === null || mappings.length === 0) return null;
  const before = residentFileBytes();
  return dropPages(mappings) ? Math.max(0, before - residentFileBytes()) : null;
}

/**
 * Trims now and every TRIM_INTERVAL_MS (a timer that does not keep the process alive; the later
 * trims do not measure what they give back); returns what the first trim gave back (null:
 * trimming is not possible here).
 */
export function startTrimmingCodePages(): number | null {
  const mappings = codeMappings();
  const released = trimCodePages(mappings);
  if (released !== null) setInterval(() => dropPages(mappings), TRIM_INTERVAL_MS).unref();
  return released;
}
