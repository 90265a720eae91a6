/**
 * A bundled object decoded for native-objects.ts: a private copy of its append log (the marshal
 * pairs core.lua writes: a string key, then a string, number, boolean or nil value; a later pair
 * of a key replaces the earlier, nil removes it) and an open-addressing index from a key's bytes
 * to the offset of its latest pair, both in typed arrays. A lookup hashes the request's key bytes
 * and compares them with the log's in place: no string and no JavaScript object per member. (A
 * Map of member strings cost a string per request and a few cache misses per lookup, and its
 * hundred thousand strings made every garbage collection that visited it slower.)
 *
 * Keys stay in the index after their removal (their latest pair is a nil) until the object is
 * compacted, which rebuilds it from the live pairs.
 */

import { copyBytes, readInt32LE } from "../bytes.ts";
import { hashKey } from "../store/store.ts";

export const MAGIC = 0x8e;
export const T_NIL = 0;
export const T_BOOLEAN = 1;
export const T_NUMBER = 3;
export const T_STRING = 4;

/** Thrown for a log these pairs do not describe (a nested table, a number key...): Lua reads it. */
export class NotFlat extends Error {}

const MIN_SLOTS = 16;
/** A compaction keeps the log's capacity and the index's size unless they are this many times what the object needs. */
const SHRINK_FACTOR = 4;

/** The store's key hash (MurmurHash3) as the Int32 the index keeps. */
function hashBytes(buf: Uint8Array, from: number, to: number): number {
  return hashKey(buf, from, to - from) | 0;
}

export function readU32(bytes: Uint8Array, at: number): number {
  return readInt32LE(bytes, at) >>> 0;
}

export function writeU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n & 0xff;
  out[at + 1] = (n >>> 8) & 0xff;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = n >>> 24;
}

/** Doubles cross through these (little-endian, as marshal.lua's "<d"; the hosts Bun runs on are). */
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

/** Where the value of the pair at `pair` starts: after the key's type byte, length and bytes. */
export function valueOffset(log: Uint8Array, pair: number): number {
  return pair + 5 + readU32(log, pair + 1);
}

export class ObjectIndex {
  /** The log's bytes: [0, length) hold MAGIC and the pairs. */
  log: Uint8Array;
  length = 1;
  /** Keys with a value. */
  count = 0;
  /** Pairs in the log: `count` of them live, the rest replaced or removed. */
  records = 0;
  /** Per slot, the offset of the latest pair of its key plus one; 0 for an empty slot. */
  private slots: Int32Array;
  /** Per slot, its key's hash. */
  private hashes: Int32Array;
  /** Keys in the index, live or removed. */
  private keys = 0;
  /** What the last compaction replaced, for the next one to reuse. */
  private spareLog: Uint8Array | null = null;
  private spareSlots: Int32Array | null = null;
  private spareHashes: Int32Array | null = null;

  /** The object whose whole log is bytes (from its MAGIC byte on). */
  constructor(bytes: Uint8Array) {
    if (bytes.length === 0 || bytes[0] !== MAGIC) throw new NotFlat();
    this.log = new Uint8Array(Math.max(64, bytes.length + (bytes.length >>> 2)));
    this.log.set(bytes, 0);
    let slots = MIN_SLOTS;
    // Room for one key per 16 bytes of log at half load (a set's pair takes 15 bytes and more); grown when short.
    while (slots * 8 < bytes.length) slots *= 2;
    this.slots = new Int32Array(slots);
    this.hashes = new Int32Array(slots);
    this.index(1, bytes.length);
  }

  /** Takes bytes appended to the log since (by this or another thread). */
  extend(bytes: Uint8Array): void {
    const from = this.length;
    this.room(bytes.length);
    this.log.set(bytes, from);
    this.index(from, from + bytes.length);
  }

  /** The offset of the latest pair of key buf[from, to), or -1 when the log has none. */
  find(buf: Uint8Array, from: number, to: number): number {
    const slot = this.slotOf(buf, from, to, hashBytes(buf, from, to));
    return this.slots[slot] - 1;
  }

  /** The type of the value of the latest pair of key buf[from, to): T_NIL when it has none. */
  typeOf(buf: Uint8Array, from: number, to: number): number {
    const pair = this.find(buf, from, to);
    return pair < 0 ? T_NIL : this.log[valueOffset(this.log, pair)];
  }

  /** The number the pair holds (its value must be T_NUMBER). */
  numberAt(pair: number): number {
    const at = valueOffset(this.log, pair) + 1;
    copyBytes(this.log, at, at + 8, f64Bytes, 0);
    return f64[0];
  }

  /** Appends and indexes key buf[from, to) = the string value vbuf[vFrom, vTo); returns where the pair starts. */
  appendString(buf: Uint8Array, from: number, to: number, vbuf: Uint8Array, vFrom: number, vTo: number): number {
    const value = this.beginPair(buf, from, to, 5 + vTo - vFrom);
    const log = this.log;
    log[value] = T_STRING;
    writeU32(log, value + 1, vTo - vFrom);
    copyBytes(vbuf, vFrom, vTo, log, value + 5);
    return this.endPair(value, value + 5 + vTo - vFrom);
  }

  /** Appends and indexes key buf[from, to) = the number n; returns where the pair starts. */
  appendNumber(buf: Uint8Array, from: number, to: number, n: number): number {
    const value = this.beginPair(buf, from, to, 9);
    this.log[value] = T_NUMBER;
    f64[0] = n;
    copyBytes(f64Bytes, 0, 8, this.log, value + 1);
    return this.endPair(value, value + 9);
  }

  /** Appends and indexes the nil that removes key buf[from, to); returns where the pair starts. */
  appendNil(buf: Uint8Array, from: number, to: number): number {
    const value = this.beginPair(buf, from, to, 1);
    this.log[value] = T_NIL;
    return this.endPair(value, value + 1);
  }

  /** Writes a pair's key at the end of the log, with room for valueBytes after it; returns where its value goes. */
  private beginPair(buf: Uint8Array, from: number, to: number, valueBytes: number): number {
    const keyLen = to - from;
    this.room(5 + keyLen + valueBytes);
    const pair = this.length;
    this.log[pair] = T_STRING;
    writeU32(this.log, pair + 1, keyLen);
    copyBytes(buf, from, to, this.log, pair + 5);
    return pair + 5 + keyLen;
  }

  /** Indexes the pair whose value beginPair placed at `value`, now written up to `end`; returns its start. */
  private endPair(value: number, end: number): number {
    const pair = this.length;
    this.index(pair, end);
    return pair;
  }

  /** Calls fn with the offset of every live pair (its key's latest, not a nil), in the index's order. */
  forEachLive(fn: (pair: number) => void): void {
    const slots = this.slots;
    const log = this.log;
    for (let i = 0; i < slots.length; i++) {
      const pair = slots[i] - 1;
      if (pair >= 0 && log[valueOffset(log, pair)] !== T_NIL) fn(pair);
    }
  }

  /**
   * Drops the replaced and removed pairs: the live ones are copied, in the index's order, into
   * the spare log (the log before the last compaction, so that a run of them allocates
   * nothing), and the index is rebuilt from the hashes it holds. Returns the new log, MAGIC and
   * the live pairs as table.marshal writes a flat table, as log[0, length).
   */
  compact(): Uint8Array {
    const old = this.log;
    const oldSlots = this.slots;
    const oldHashes = this.hashes;
    // The new log and index keep the sizes the churn since the last compaction needed (so that
    // the next round neither grows them nor allocates), unless the object shrank a lot.
    // Whether to shrink is judged from the average pair; only then are the live bytes counted.
    const estimate = 1 + Math.ceil(((this.length - 1) * this.count) / Math.max(1, this.records));
    const capacity = old.length > SHRINK_FACTOR * 2 * estimate ? Math.max(64, 2 * this.liveBytes()) : old.length;
    const log = this.spareLog !== null && this.spareLog.length === capacity ? this.spareLog : new Uint8Array(capacity);
    let size = MIN_SLOTS;
    while (size < this.count * 2) size *= 2;
    if (oldSlots.length <= SHRINK_FACTOR * size) size = Math.max(size, oldSlots.length);
    const slots = this.spareSlots !== null && this.spareSlots.length === size ? this.spareSlots.fill(0) : new Int32Array(size);
    const hashes = this.spareHashes !== null && this.spareHashes.length === size ? this.spareHashes : new Int32Array(size);
    log[0] = MAGIC;
    let length = 1;
    for (let i = 0; i < oldSlots.length; i++) {
      const pair = oldSlots[i] - 1;
      if (pair < 0) continue;
      const value = valueOffset(old, pair);
      if (old[value] === T_NIL) continue;
      const end = pairEnd(old, value);
      placeNew(slots, hashes, oldHashes[i], length + 1);
      copyBytes(old, pair, end, log, length);
      length += end - pair;
    }
    this.spareLog = old;
    this.spareSlots = oldSlots;
    this.spareHashes = oldHashes;
    this.log = log;
    this.slots = slots;
    this.hashes = hashes;
    this.length = length;
    this.keys = this.records = this.count;
    return log;
  }

  /** Bytes of MAGIC and the live pairs: what the log compacts to. */
  private liveBytes(): number {
    let live = 1;
    this.forEachLive((pair) => {
      live += pairEnd(this.log, valueOffset(this.log, pair)) - pair;
    });
    return live;
  }

  /** Makes room for n more bytes of log. */
  private room(n: number): void {
    const need = this.length + n;
    if (need <= this.log.length) return;
    const grown = new Uint8Array(Math.max(need, this.log.length * 2));
    copyBytes(this.log, 0, this.length, grown, 0);
    this.log = grown;
  }

  /** Indexes the pairs in log[from, end), checking that they are flat pairs. */
  private index(from: number, end: number): void {
    const log = this.log;
    let pair = from;
    while (pair < end) {
      if (log[pair] !== T_STRING || pair + 5 > end) throw new NotFlat();
      const keyStart = pair + 5;
      const value = keyStart + readU32(log, pair + 1);
      if (value >= end) throw new NotFlat();
      const next = pairEnd(log, value);
      if (next > end) throw new NotFlat();
      if (this.keys * 2 >= this.slots.length) this.grow();
      const hash = hashBytes(log, keyStart, value);
      const slot = this.slotOf(log, keyStart, value, hash);
      const previous = this.slots[slot] - 1;
      if (previous < 0) {
        this.keys++;
        this.hashes[slot] = hash;
      } else if (log[valueOffset(log, previous)] !== T_NIL) this.count--;
      if (log[value] !== T_NIL) this.count++;
      this.slots[slot] = pair + 1;
      this.records++;
      pair = next;
    }
    this.length = end;
  }

  /** The slot of the key buf[from, to) with this hash: its own, or the empty one it would take. */
  private slotOf(buf: Uint8Array, from: number, to: number, hash: number): number {
    const slots = this.slots;
    const hashes = this.hashes;
    const mask = slots.length - 1;
    const log = this.log;
    const keyLen = to - from;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const at = slots[slot];
      if (at === 0) return slot;
      if (hashes[slot] !== hash || readU32(log, at) !== keyLen) continue;
      let same = true;
      for (let i = 0, k = at + 4; same && i < keyLen; i++, k++) same = log[k] === buf[from + i];
      if (same) return slot;
    }
  }

  private grow(): void {
    const oldSlots = this.slots;
    const oldHashes = this.hashes;
    const slots = new Int32Array(oldSlots.length * 2);
    const hashes = new Int32Array(slots.length);
    for (let i = 0; i < oldSlots.length; i++) if (oldSlots[i] !== 0) placeNew(slots, hashes, oldHashes[i], oldSlots[i]);
    this.slots = slots;
    this.hashes = hashes;
  }
}

/** Puts `entry` of a key known not to be in the table into the first free slot from its hash. */
function placeNew(slots: Int32Array, hashes: Int32Array, hash: number, entry: number): void {
  const mask = slots.length - 1;
  let slot = hash & mask;
  while (slots[slot] !== 0) slot = (slot + 1) & mask;
  slots[slot] = entry;
  hashes[slot] = hash;
}

/** Where the pair whose value starts at `value` ends; past the log when it is cut short. */
function pairEnd(log: Uint8Array, value: number): number {
  switch (log[value]) {
    case T_STRING:
      return value + 5 + readU32(log, value + 1);
    case T_NUMBER:
      return value + 9;
    case T_BOOLEAN:
      return value + 2;
    case T_NIL:
      return value + 1;
    default:
      throw new NotFlat();
  }
}
