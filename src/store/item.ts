/**
 * Layout of an item in the arena. An item's first extent starts with a 56-byte header, then the
 * key, then the value; a value that did not fit one contiguous block continues in further
 * extents, each starting with an 8-byte header (units, next extent).
 */
import { type Arena, UNIT_BYTES } from "./arena.ts";

/** u32 field numbers in the header. */
export const F_LRU_PREV = 0;
export const F_LRU_NEXT = 1;
export const F_HASH_NEXT = 2;
export const F_HASH = 3;
/** Absolute unix seconds; 0 = never expires. */
export const F_EXPTIME = 4;
export const F_FLAGS = 5;
export const F_VALUE_LEN = 6;
export const F_CAS_LO = 7;
export const F_CAS_HI = 8;
/**
 * Key length in the low 16 bits, the key's namespace above them (see Namespace), then the meta
 * protocol's KEY_BINARY, WIN_SENT and STALE bits, FETCHED on top.
 */
export const F_KEY_LEN = 9;
/** Units in the first extent. */
export const F_UNITS = 10;
/** First unit of the next extent, 0 when the item is contiguous. */
export const F_MORE = 11;
/** Unix seconds of the last read hit, or of the store (meta `mg l`, `me` la=). */
export const F_ATIME = 12;
/** The LRU's insert count when the item last went to its head (see LruList.recentlyUsed). */
export const F_LRU_STAMP = 13;

export const KEY_LEN_MASK = 0xffff;
const NAMESPACE_SHIFT = 16;
/** F_KEY_LEN bit set by the item's first read hit (stats `expired_unfetched`); a new item has it clear. */
export const FETCHED = 0x80000000;
/** F_KEY_LEN bit set by `md <key> I`: the value is served with X until it is replaced. */
export const STALE = 0x40000000;
/** F_KEY_LEN bit set when a meta get was told it won the recache (W): later ones get Z. */
export const WIN_SENT = 0x20000000;
/** F_KEY_LEN bit set when a meta command stored the key base64-encoded (`b`): `k` returns it so. */
export const KEY_BINARY = 0x10000000;
/** F_KEY_LEN without FETCHED, STALE, WIN_SENT and KEY_BINARY: what keyWord gives for the item's key. */
export const KEY_WORD_MASK = 0x0fffffff;

/**
 * Who an item belongs to. Client commands reach only Client items and scripts only Objects, so no
 * key bytes a client sends can read, overwrite or delete a Lua object, and no script a plain key.
 */
export const enum Namespace {
  Client = 0,
  Objects = 1,
}

/** The F_KEY_LEN word of a key of `len` bytes in namespace `ns`. */
export function keyWord(len: number, ns: Namespace): number {
  return len | (ns << NAMESPACE_SHIFT);
}

export function keyLengthOf(arena: Arena, item: number): number {
  return arena.getWord(item, F_KEY_LEN) & KEY_LEN_MASK;
}

export function namespaceOf(arena: Arena, item: number): Namespace {
  return (arena.getWord(item, F_KEY_LEN) & KEY_WORD_MASK) >>> NAMESPACE_SHIFT;
}

/** Marks the item as read at least once. */
export function markFetched(arena: Arena, item: number): void {
  const word = arena.getWord(item, F_KEY_LEN);
  if ((word & FETCHED) === 0) arena.setWord(item, F_KEY_LEN, (word | FETCHED) >>> 0);
}

export function wasFetched(arena: Arena, item: number): boolean {
  return (arena.getWord(item, F_KEY_LEN) & FETCHED) !== 0;
}

/** Whether the item has `bit` (STALE, WIN_SENT, KEY_BINARY) set. */
export function hasBit(arena: Arena, item: number, bit: number): boolean {
  return (arena.getWord(item, F_KEY_LEN) & bit) !== 0;
}

/** Sets or clears `bits` (STALE, WIN_SENT, KEY_BINARY) of the item. */
export function setBits(arena: Arena, item: number, bits: number, on: boolean): void {
  const word = arena.getWord(item, F_KEY_LEN);
  arena.setWord(item, F_KEY_LEN, (on ? word | bits : word & ~bits) >>> 0);
}

export const HEADER_BYTES = 56;
export const EXTENT_HEADER_BYTES = 8;
export const KEY_MAX_BYTES = 250;

/** Minimum units the first extent needs: header and key must be contiguous. */
export function firstExtentMinUnits(keyLen: number): number {
  return Math.ceil((HEADER_BYTES + keyLen) / UNIT_BYTES);
}

/** Total bytes the item occupies in the arena, all extents included. */
export function itemBytes(arena: Arena, item: number): number {
  let units = arena.getWord(item, F_UNITS);
  for (let ext = arena.getWord(item, F_MORE); ext !== 0; ext = arena.getWord(ext, 1)) {
    units += arena.getWord(ext, 0);
  }
  return units * UNIT_BYTES;
}

export function casOf(arena: Arena, item: number): number {
  return arena.getWord(item, F_CAS_HI) * 0x100000000 + arena.getWord(item, F_CAS_LO);
}
