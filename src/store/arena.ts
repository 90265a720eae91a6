/**
 * The arena: all item memory, as SharedArrayBuffer segments addressed by a u32 *unit* index.
 *
 * A unit is UNIT_BYTES bytes. Unit 0 is never handed out, so 0 means "none" everywhere.
 * Bun refuses a single buffer much above 4 GiB, so memory is split into segments of at most
 * SEGMENT_UNITS units; an extent never crosses a segment. All segment arithmetic lives here.
 *
 * Free space is a set of runs of contiguous units ("blocks"), kept on segregated free lists
 * (exact bins for small runs, power-of-two bins above) with boundary tags so that a freed block
 * merges with free neighbours at once. A free block stores, in its first unit:
 *   u32[0] = length in units, u32[1] = previous free block, u32[2] = next free block,
 * and its length again in the first u32 of its last unit. A bitmap marks the first and last
 * unit of every free block, which is how a freed block finds free neighbours.
 *
 * All of it (segments, free marks, bin heads, the free total) lives in SharedArrayBuffers, so that
 * every thread that attaches the same ArenaMemory sees one arena.
 */

import { adviseHugePages } from "./huge-pages.ts";

export const UNIT_BYTES = 32;
export const UNIT_SHIFT = 5;
export const U32_PER_UNIT = UNIT_BYTES >>> 2;

/** 2 GiB segments: 2^26 units of 32 bytes. */
const SEGMENT_SHIFT = 26;
const SEGMENT_UNITS = 1 << SEGMENT_SHIFT;
const SEGMENT_MASK = SEGMENT_UNITS - 1;

/** Blocks of 1..EXACT_BINS units each have their own bin; larger ones share power-of-two bins. */
const EXACT_BINS = 64;
const BIN_COUNT = EXACT_BINS + 27;
const BIN_MASK_WORDS = Math.ceil(BIN_COUNT / 32);
/** Words of ArenaMemory.meta: the bin heads, then the bin mask, then the free total. */
const META_BIN_MASK = BIN_COUNT;
const META_FREE_UNITS = BIN_COUNT + BIN_MASK_WORDS;
const META_WORDS = META_FREE_UNITS + 1;

/** The arena's shared state: what another thread needs to attach the same arena. */
export interface ArenaMemory {
  readonly segments: readonly SharedArrayBuffer[];
  /** One bit per unit: the first and last unit of every free block. */
  readonly freeMarks: SharedArrayBuffer;
  readonly meta: SharedArrayBuffer;
}

/** A new, empty arena's shared state (every unit but the null one free), on huge pages where asked and offered. */
export function createArenaMemory(totalBytes: number, hugePages = true): ArenaMemory {
  const units = Math.floor(totalBytes / UNIT_BYTES);
  if (units < 2) throw new RangeError("arena too small");
  if (units > 0xffffffff) throw new RangeError("arena too large for u32 unit indices");
  const segments: SharedArrayBuffer[] = [];
  for (let first = 0; first < units; first += SEGMENT_UNITS) {
    const segment = new SharedArrayBuffer(Math.min(SEGMENT_UNITS, units - first) * UNIT_BYTES);
    if (hugePages) adviseHugePages(segment);
    segments.push(segment);
  }
  const memory = { segments, freeMarks: new SharedArrayBuffer(Math.ceil(units / 32) * 4), meta: new SharedArrayBuffer(META_WORDS * 4) };
  new Arena(memory).reset();
  return memory;
}

export class Arena {
  readonly totalUnits: number;
  readonly totalBytes: number;
  /** Per segment: byte view and u32 view over the same SharedArrayBuffer. */
  readonly bytes: Uint8Array[];
  readonly words: Uint32Array[];
  private readonly freeMarks: Uint32Array;
  /** Bin heads, then one bit per bin (set when the bin is not empty), then the free total. */
  private readonly meta: Uint32Array;

  /** Attaches the arena whose shared state is `memory` (createArenaMemory makes a new one). */
  constructor(memory: ArenaMemory) {
    this.bytes = memory.segments.map((sab) => new Uint8Array(sab));
    this.words = memory.segments.map((sab) => new Uint32Array(sab));
    this.totalBytes = this.bytes.reduce((sum, b) => sum + b.length, 0);
    this.totalUnits = this.totalBytes / UNIT_BYTES;
    this.freeMarks = new Uint32Array(memory.freeMarks);
    this.meta = new Uint32Array(memory.meta);
  }

  /** Free units in the whole arena. */
  get freeUnits(): number {
    return this.meta[META_FREE_UNITS];
  }

  /**
   * Makes every unit free again: one free block per segment. Whatever items held is forgotten
   * without being walked, so emptying the cache costs the same whatever it held.
   */
  reset(): void {
    this.freeMarks.fill(0);
    this.meta.fill(0);
    // Unit 0 is reserved as the null address.
    for (let first = 0; first < this.totalUnits; first += SEGMENT_UNITS) {
      const start = first === 0 ? 1 : first;
      const end = Math.min(first + SEGMENT_UNITS, this.totalUnits);
      this.insertFree(start, end - start);
    }
  }

  /** Byte view of the segment holding `unit`. */
  segmentBytes(unit: number): Uint8Array {
    return this.bytes[unit >>> SEGMENT_SHIFT];
  }

  /** Byte offset of `unit` inside its segment. */
  byteOffset(unit: number): number {
    return (unit & SEGMENT_MASK) << UNIT_SHIFT;
  }

  /** Reads the u32 field `field` (0..7 within the unit, may run into following units). */
  getWord(unit: number, field: number): number {
    return this.words[unit >>> SEGMENT_SHIFT][((unit & SEGMENT_MASK) << 3) + field];
  }

  setWord(unit: number, field: number, value: number): void {
    this.words[unit >>> SEGMENT_SHIFT][((unit & SEGMENT_MASK) << 3) + field] = value;
  }

  /** Takes exactly `units` contiguous units, or returns 0 when no free block is large enough. */
  allocate(units: number): number {
    let bin = binOf(units);
    if (bin < EXACT_BINS && this.meta[bin] !== 0) return this.take(this.meta[bin], units);
    // A shared bin may hold blocks smaller than wanted: first fit inside it.
    if (bin >= EXACT_BINS) {
      for (let b = this.meta[bin]; b !== 0; b = this.getWord(b, 2)) {
        if (this.getWord(b, 0) >= units) return this.take(b, units);
      }
    }
    bin = this.nextNonEmptyBin(bin + 1);
    if (bin < 0) return 0;
    return this.take(this.meta[bin], units);
  }

  /**
   * The largest free block, taken whole or up to `maxUnits`, for items that must be spread over
   * several extents. Returns the block's first unit; its length is `lastTakenUnits`.
   */
  allocateLargest(maxUnits: number): number {
    const bin = this.highestNonEmptyBin();
    if (bin < 0) return 0;
    let best = this.meta[bin];
    let bestLen = this.getWord(best, 0);
    if (bin >= EXACT_BINS) {
      for (let b = this.getWord(best, 2); b !== 0 && bestLen < maxUnits; b = this.getWord(b, 2)) {
        const len = this.getWord(b, 0);
        if (len > bestLen) {
          best = b;
          bestLen = len;
        }
      }
    }
    const units = bestLen < maxUnits ? bestLen : maxUnits;
    this.lastTakenUnits = units;
    return this.take(best, units);
  }

  lastTakenUnits = 0;

  /** Returns `units` units starting at `start` to the free lists, merging with free neighbours. */
  release(start: number, units: number): void {
    let first = start;
    let len = units;
    const segStart = start & ~SEGMENT_MASK;
    const segEnd = Math.min(segStart + SEGMENT_UNITS, this.totalUnits);
    // Merge with a free block that ends just before us (same segment only).
    // (Unit 0 is never marked, so segment 0 needs no special case.)
    if (first > segStart && this.isMarked(first - 1)) {
      const prevLen = this.getWord(first - 1, 0);
      const prevFirst = first - prevLen;
      this.removeFree(prevFirst, prevLen);
      first = prevFirst;
      len += prevLen;
    }
    const after = start + units;
    if (after < segEnd && this.isMarked(after)) {
      const nextLen = this.getWord(after, 0);
      this.removeFree(after, nextLen);
      len += nextLen;
    }
    this.insertFree(first, len);
  }

  /** Splits `units` off the front of free block `block`; the rest goes back on a free list. */
  private take(block: number, units: number): number {
    const len = this.getWord(block, 0);
    this.removeFree(block, len);
    if (len > units) this.insertFree(block + units, len - units);
    return block;
  }

  private insertFree(first: number, len: number): void {
    const bin = binOf(len);
    const head = this.meta[bin];
    this.setWord(first, 0, len);
    this.setWord(first, 1, 0);
    this.setWord(first, 2, head);
    if (head !== 0) this.setWord(head, 1, first);
    this.meta[bin] = first;
    this.meta[META_BIN_MASK + (bin >>> 5)] |= 1 << (bin & 31);
    const last = first + len - 1;
    this.setWord(last, 0, len);
    this.mark(first);
    this.mark(last);
    this.meta[META_FREE_UNITS] += len;
  }

  private removeFree(first: number, len: number): void {
    const prev = this.getWord(first, 1);
    const next = this.getWord(first, 2);
    const bin = binOf(len);
    if (prev !== 0) this.setWord(prev, 2, next);
    else {
      this.meta[bin] = next;
      if (next === 0) this.meta[META_BIN_MASK + (bin >>> 5)] &= ~(1 << (bin & 31));
    }
    if (next !== 0) this.setWord(next, 1, prev);
    this.unmark(first);
    this.unmark(first + len - 1);
    this.meta[META_FREE_UNITS] -= len;
  }

  private nextNonEmptyBin(from: number): number {
    for (let w = from >>> 5; w < BIN_MASK_WORDS; w++) {
      let bits = this.meta[META_BIN_MASK + w];
      if (w === from >>> 5) bits &= ~((1 << (from & 31)) - 1) | 0;
      if (bits !== 0) return (w << 5) + (31 - Math.clz32(bits & -bits));
    }
    return -1;
  }

  private highestNonEmptyBin(): number {
    for (let w = BIN_MASK_WORDS - 1; w >= 0; w--) {
      const bits = this.meta[META_BIN_MASK + w];
      if (bits !== 0) return (w << 5) + (31 - Math.clz32(bits));
    }
    return -1;
  }

  private mark(unit: number): void {
    this.freeMarks[unit >>> 5] |= 1 << (unit & 31);
  }

  private unmark(unit: number): void {
    this.freeMarks[unit >>> 5] &= ~(1 << (unit & 31));
  }

  private isMarked(unit: number): boolean {
    return (this.freeMarks[unit >>> 5] & (1 << (unit & 31))) !== 0;
  }

  /** Debug check: walks every free list and verifies lengths, marks and the free total. */
  checkFreeLists(): void {
    let total = 0;
    for (let bin = 0; bin < BIN_COUNT; bin++) {
      for (let b = this.meta[bin], prev = 0; b !== 0; prev = b, b = this.getWord(b, 2)) {
        const len = this.getWord(b, 0);
        if (binOf(len) !== bin) throw new Error(`free block ${b} of ${len} units in bin ${bin}`);
        if (this.getWord(b, 1) !== prev) throw new Error(`free block ${b}: bad prev link`);
        if (!this.isMarked(b) || !this.isMarked(b + len - 1)) throw new Error(`free block ${b}: unmarked`);
        if (this.getWord(b + len - 1, 0) !== len) throw new Error(`free block ${b}: bad tail tag`);
        total += len;
      }
    }
    if (total !== this.freeUnits) throw new Error(`free units ${this.freeUnits} but lists hold ${total}`);
  }
}

function binOf(units: number): number {
  if (units <= EXACT_BINS) return units - 1;
  // 65..127 -> EXACT_BINS, 128..255 -> EXACT_BINS + 1, ...
  return EXACT_BINS + (31 - Math.clz32(units)) - 6;
}

export function unitsFor(bytes: number): number {
  return (bytes + UNIT_BYTES - 1) >>> UNIT_SHIFT;
}
