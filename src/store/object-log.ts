/**
 * Objects stored as append logs: an object item may hold more room than its value uses (its
 * extents are sized for a capacity, F_VALUE_LEN says how much is written), so that a change is
 * written at the end of the value, in place, instead of storing the whole object again. The
 * store knows nothing of this: the room is ordinary units of the item (counted in `bytes`,
 * freed by eviction), and every reader of the value reads F_VALUE_LEN bytes as usual.
 * Callers hold the store's lock.
 */
import { copyBytes } from "../bytes.ts";
import { type Arena, UNIT_BYTES } from "./arena.ts";
import { EXTENT_HEADER_BYTES, F_CAS_HI, F_CAS_LO, F_MORE, F_UNITS, F_VALUE_LEN, HEADER_BYTES, keyLengthOf } from "./item.ts";

/** Bytes the item's extents can hold as value. */
export function valueRoom(arena: Arena, it: number): number {
  let room = arena.getWord(it, F_UNITS) * UNIT_BYTES - HEADER_BYTES - keyLengthOf(arena, it);
  for (let ext = arena.getWord(it, F_MORE); ext !== 0; ext = arena.getWord(ext, 1)) {
    room += arena.getWord(ext, 0) * UNIT_BYTES - EXTENT_HEADER_BYTES;
  }
  return room;
}

/** Sets how many bytes of the item's room are its value. */
export function setValueLength(arena: Arena, it: number, length: number): void {
  arena.setWord(it, F_VALUE_LEN, length);
}

/**
 * Gives a grown copy of an object log the version of the item it copies: what it holds starts
 * with the same bytes, so a reader that decoded the old item only needs what was appended.
 */
export function keepVersion(arena: Arena, it: number, cas: number): void {
  arena.setWord(it, F_CAS_LO, cas >>> 0);
  arena.setWord(it, F_CAS_HI, Math.floor(cas / 0x100000000));
}

/** Writes src into the item's value at byte `at` (within its room), across extents. */
export function writeValueAt(arena: Arena, it: number, at: number, src: Uint8Array): void {
  copyValueRange(arena, it, at, src, true);
}

/** Reads the item's value bytes [at, at + dst.length) into dst. */
export function readValueAt(arena: Arena, it: number, at: number, dst: Uint8Array): void {
  copyValueRange(arena, it, at, dst, false);
}

function copyValueRange(arena: Arena, it: number, at: number, buf: Uint8Array, write: boolean): void {
  let seg = arena.segmentBytes(it);
  const keyLen = keyLengthOf(arena, it);
  let base = arena.byteOffset(it) + HEADER_BYTES + keyLen;
  let room = arena.getWord(it, F_UNITS) * UNIT_BYTES - (HEADER_BYTES + keyLen);
  let ext = arena.getWord(it, F_MORE);
  let done = 0;
  for (;;) {
    if (at < room) {
      const n = Math.min(buf.length - done, room - at);
      if (write) copyBytes(buf, done, done + n, seg, base + at);
      else copyBytes(seg, base + at, base + at + n, buf, done);
      done += n;
      at = room;
    }
    if (done === buf.length) return;
    if (ext === 0) throw new RangeError("value range past the item's room");
    at -= room;
    seg = arena.segmentBytes(ext);
    base = arena.byteOffset(ext) + EXTENT_HEADER_BYTES;
    room = arena.getWord(ext, 0) * UNIT_BYTES - EXTENT_HEADER_BYTES;
    ext = arena.getWord(ext, 1);
  }
}

/** Room to give a log of `length` bytes: half again (at least 64 bytes), within `max`. */
export function logCapacity(length: number, max: number): number {
  return Math.min(max, length + Math.max(64, length >>> 1));
}
