/**
 * What the scripting engine needs from the item store. Objects (maps, sets,
 * quotas, counters, user types) are ordinary items reached through this
 * interface, so they share the memory limit and the LRU with every other item.
 * Keys are latin1 strings: one character (U+0000..U+00FF) per key byte.
 */
export interface ObjectStoreAccess {
  /** Returns the item (and moves it to the LRU head) or null when missing/expired. */
  get(key: string): { data: Uint8Array; flags: number; exptime: number } | null;
  /**
   * The item's version (changed by every write, like a CAS unique), moving it to the LRU head as
   * a read does; null when missing. Lets a caller reuse what it decoded from an unchanged item.
   */
  version(key: string): number | null;
  /**
   * Stores (replacing). Returns the stored item's version, or 0 when memory cannot be found.
   * Throws when the item is larger than the item size limit. On failure the old item stays.
   * exptime: memcached semantics, 0 = never.
   */
  set(key: string, data: Uint8Array, flags: number, exptime: number): number;
  delete(key: string): boolean;
  keysWithPrefix(prefix: string): string[];
  /** Evicts least-recently-used items until at least `bytes` were freed; returns bytes freed. */
  evictLRU(bytes: number): number;
  /**
   * Runs fn (Lua code) while no other thread runs Lua on the same objects, so that a method's
   * read-modify-write of an object is atomic across threads.
   */
  exclusive<T>(fn: () => T): T;
  /**
   * Optional fast paths for objects kept as append logs (object-log.ts gives every store them,
   * emulated with get/set when missing). readLog: when the item is still at `version` with at
   * least `length` bytes, the bytes after `length` (from = length, the object only grew); else
   * the whole value (from = 0). Moves the item to the LRU head; null when missing.
   */
  readLog?(key: string, version: number, length: number): LogRead | null;
  /**
   * Appends bytes to the value of the item at (version, length): in place when its room allows,
   * else into a larger copy. Null when the item is gone or not at (version, length), 0 when the
   * store has no memory; throws when the item would pass the item size limit.
   */
  appendLog?(key: string, version: number, length: number, bytes: Uint8Array): LogState | null | 0;
  /** Stores data (flags 0, never expiring) with room for appends; 0 when the store has no memory. */
  storeLog?(key: string, data: Uint8Array): LogState | 0;
  /**
   * Optional, for a caller that keeps what it read: a count that moves whenever any thread takes
   * the store's lock (every change to an item is made holding it), -1 while a holder is at work
   * or when every read must reach the store (an eviction policy that counts reads). Items also
   * expire by the clock alone, so with clockSeconds: an equal count and second mean every item is
   * as it was, its place in the LRU included (a read since would have changed nothing).
   */
  changeCount?(): number;
  /** The store clock's second (see changeCount). */
  clockSeconds?(): number;
}

/** Where an object log stands: its item's version (unchanged by appends in place) and length. */
export interface LogState {
  readonly version: number;
  readonly length: number;
}

export interface LogRead extends LogState {
  /** Offset in the value where `bytes` start: 0 for the whole value, else the length asked for. */
  readonly from: number;
  readonly bytes: Uint8Array;
}
