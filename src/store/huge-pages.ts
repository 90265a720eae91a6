/**
 * Asks Linux to back a large SharedArrayBuffer with 2 MiB pages (madvise MADV_HUGEPAGE).
 *
 * Items sit at random places in the arena, so nearly every request touches pages the TLB does
 * not cover; with 4 KiB pages each such touch costs a page walk, which a virtual machine makes
 * two-dimensional. Measured with both servers on one core under the same write flood
 * (bench/paired.ts, README "Paired runs"): 2 % more 4 KB sets, 4 % more 1 KB sets. Debian's default
 * transparent-huge-page mode is "madvise", which gives huge pages only to memory that asks.
 *
 * madvise comes from libc (src/madvise.ts). Where that is not possible (not glibc
 * Linux, THP "never") the buffer keeps normal pages and nothing else changes.
 */
import { ptr } from "bun:ffi";
import { MADV_DONTNEED, MADV_HUGEPAGE, madvise } from "../madvise.ts";

const HUGE_PAGE_BYTES = 2 << 20;

/**
 * Advises huge pages for the whole 2 MiB pages inside `buffer` but its first and last (a buffer
 * under 8 MiB keeps small pages). An empty arena writes its free list's tags in its first and last
 * unit: on huge pages that would make 4 MiB resident before any item is stored, which the
 * server's RSS ceiling (taken once listening) would count twice, as process and as arena.
 *
 * `buffer` must be new (all zeros): its pages are then dropped, so that the next touch faults in
 * a zeroed huge page. The advice only shapes later faults, and a buffer placed in memory the
 * process had used before arrives already resident on 4 KiB pages: one server in three with a
 * 16 MiB arena got no huge page at all before this.
 */
export function adviseHugePages(buffer: SharedArrayBuffer): void {
  if (madvise === null || buffer.byteLength < 4 * HUGE_PAGE_BYTES) return;
  const base = ptr(new Uint8Array(buffer));
  const start = (Math.ceil(base / HUGE_PAGE_BYTES) + 1) * HUGE_PAGE_BYTES;
  const end = (Math.floor((base + buffer.byteLength) / HUGE_PAGE_BYTES) - 1) * HUGE_PAGE_BYTES;
  if (end <= start) return;
  madvise(start, end - start, MADV_HUGEPAGE);
  madvise(start, end - start, MADV_DONTNEED);
}
