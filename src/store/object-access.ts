/**
 * String-keyed access to the store for the scripting engine. Lua objects are ordinary items
 * (same memory limit, same eviction) in the store's Objects namespace, which no client command
 * reaches. Key strings carry one byte per character (latin1), so key bytes cross unchanged. This
 * is the slow, allocating path that only virtual keys take; plain get/set never come here.
 * Each call holds the store's lock; `exclusive` holds the objects lock around a run of Lua.
 * readLog/appendLog/storeLog keep objects as append logs with room to grow (object-log.ts).
 */
import type { LogRead, LogState, ObjectStoreAccess } from "../scripting/store-access.ts";
import { latin1String } from "../latin1.ts";
import { HEADER_BYTES, Namespace } from "./item.ts";
import { keepVersion, logCapacity, readValueAt, setValueLength, valueRoom, writeValueAt } from "./object-log.ts";
import { type Store, StoreMode, StoreResult } from "./store.ts";

const EMPTY = new Uint8Array(0);

export class StoreObjectAccess implements ObjectStoreAccess {
  /** Object keys are encoded here rather than into a new array per call. */
  private keyBytes = new Uint8Array(1024);
  /** Object logs are copied and grown here. */
  private scratch = new Uint8Array(4096);
  /**
   * The object appendLog last appended to (its storage key, "" for none), its item, and the
   * lock's release count that append's unlock made.
   */
  private appendedKey = "";
  private appendedItem = 0;
  private appendedReleases = -1;

  constructor(
    private readonly store: Store,
    /** The eviction policy counts every read hit (gdsf): changeCount then answers -1, so that no read skips the store. */
    private readonly everyReadCounts = false,
  ) {}

  /** Encodes key into keyBytes, one byte per character; returns its length in bytes. */
  private encodeKey(key: string): number {
    if (key.length > this.keyBytes.length) this.keyBytes = new Uint8Array(key.length);
    const bytes = this.keyBytes;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      if (c > 0xff) throw new RangeError(`object key has a character above \\xff at ${i}`);
      bytes[i] = c;
    }
    return key.length;
  }

  get(key: string): { data: Uint8Array; flags: number; exptime: number } | null {
    const len = this.encodeKey(key);
    const store = this.store;
    return store.lock.hold(() => {
      const it = store.get(this.keyBytes, 0, len, Namespace.Objects);
      if (it === 0) return null;
      const data = new Uint8Array(store.valueLength(it));
      store.copyValueTo(it, data, 0);
      return { data, flags: store.flagsOf(it), exptime: store.expiryOf(it) };
    });
  }

  version(key: string): number | null {
    const len = this.encodeKey(key);
    const store = this.store;
    return store.lock.hold(() => {
      const it = store.get(this.keyBytes, 0, len, Namespace.Objects);
      return it === 0 ? null : store.casOf(it);
    });
  }

  set(key: string, data: Uint8Array, flags: number, exptime: number): number {
    const len = this.encodeKey(key);
    const keyBytes = this.keyBytes;
    const store = this.store;
    const version = store.lock.hold(() => {
      const result = store.store(StoreMode.Set, keyBytes, 0, len, flags, exptime, data, 0, data.length, 0, Namespace.Objects);
      if (result === StoreResult.TooLarge) return -1;
      if (result !== StoreResult.Stored) return 0;
      return store.casOf(store.find(keyBytes, 0, len, Namespace.Objects));
    });
    if (version < 0) throw new RangeError(`object too large for cache (${data.length} bytes, item limit ${store.maxItemBytes})`);
    return version;
  }

  delete(key: string): boolean {
    const len = this.encodeKey(key);
    return this.store.lock.hold(() => this.store.delete(this.keyBytes, 0, len, Namespace.Objects));
  }

  keysWithPrefix(prefix: string): string[] {
    const plen = this.encodeKey(prefix);
    const p = this.keyBytes.slice(0, plen);
    const keys: string[] = [];
    const buf = new Uint8Array(1024);
    const store = this.store;
    store.lock.hold(() =>
      store.forEachItem(Namespace.Objects, (it) => {
        const len = store.keyLength(it);
        if (len < plen || len > buf.length) return;
        store.copyKeyTo(it, buf, 0);
        for (let i = 0; i < plen; i++) if (buf[i] !== p[i]) return;
        keys.push(latin1String(buf, 0, len));
      }),
    );
    return keys;
  }

  evictLRU(bytes: number): number {
    return this.store.lock.hold(() => this.store.evictBytes(bytes));
  }

  readLog(key: string, version: number, length: number): LogRead | null {
    const len = this.encodeKey(key);
    const store = this.store;
    return store.lock.hold(() => {
      const it = store.get(this.keyBytes, 0, len, Namespace.Objects);
      if (it === 0) return null;
      const cas = store.casOf(it);
      const total = store.valueLength(it);
      if (cas === version && total >= length) {
        if (total === length) return { version: cas, length: total, from: length, bytes: EMPTY };
        const tail = new Uint8Array(total - length);
        readValueAt(store.arena, it, length, tail);
        return { version: cas, length: total, from: length, bytes: tail };
      }
      const bytes = new Uint8Array(total);
      store.copyValueTo(it, bytes, 0);
      return { version: cas, length: total, from: 0, bytes };
    });
  }

  appendLog(key: string, version: number, length: number, bytes: Uint8Array): LogState | null | 0 {
    const lock = this.store.lock;
    // Not lock.hold(() => ...): a closure per change showed in the profile of object updates.
    let result: LogState | null | 0 | -1;
    lock.lock();
    try {
      // The item the last append left, while no other holder released the lock since: nothing
      // can have moved, changed or freed it (every change holds the lock), so no lookup.
      const it = key === this.appendedKey && lock.unchangedSince(this.appendedReleases) ? this.appendedItem : this.store.find(this.keyBytes, 0, this.encodeKey(key), Namespace.Objects);
      this.appendedKey = "";
      result = this.appendLocked(it, key, version, length, bytes);
    } finally {
      this.appendedReleases = lock.unlock();
    }
    if (result === -1) throw new RangeError(`object too large for cache (${length + bytes.length} bytes, item limit ${this.store.maxItemBytes})`);
    if (result !== null && result !== 0) this.appendedKey = key;
    return result;
  }

  /** appendLog with the store's lock held, to the item it (0: none) of key; -1 when the object would pass the item size limit. */
  private appendLocked(it: number, key: string, version: number, length: number, bytes: Uint8Array): LogState | null | 0 | -1 {
    const store = this.store;
    const arena = store.arena;
    if (it === 0 || store.casOf(it) !== version || store.valueLength(it) !== length) return null;
    const total = length + bytes.length;
    if (total <= valueRoom(arena, it)) {
      writeValueAt(arena, it, length, bytes);
      setValueLength(arena, it, total);
      this.appendedItem = it;
      return { version, length: total };
    }
    // keyBytes are encoded again: the append that found the item may have been an earlier one.
    const len = this.encodeKey(key);
    const keyBytes = this.keyBytes;
    const maxValue = store.maxItemBytes - HEADER_BYTES - len;
    if (total > maxValue) return -1;
    // Out of room: a larger copy (its room grows by half, so copies are amortized).
    const grown = this.scratchFor(logCapacity(total, maxValue));
    store.copyValueTo(it, grown, 0);
    grown.set(bytes, length);
    const state = this.storeWithRoom(keyBytes, len, grown, total, logCapacity(total, maxValue));
    if (state === 0) return 0;
    this.appendedItem = store.find(keyBytes, 0, len, Namespace.Objects);
    keepVersion(arena, this.appendedItem, version);
    return { version, length: total };
  }

  storeLog(key: string, data: Uint8Array): LogState | 0 {
    const len = this.encodeKey(key);
    const store = this.store;
    const maxValue = store.maxItemBytes - HEADER_BYTES - len;
    if (data.length > maxValue) throw new RangeError(`object too large for cache (${data.length} bytes, item limit ${store.maxItemBytes})`);
    const capacity = logCapacity(data.length, maxValue);
    const padded = this.scratchFor(capacity);
    padded.set(data, 0);
    return store.lock.hold(() => this.storeWithRoom(this.keyBytes, len, padded, data.length, capacity));
  }

  /** Stores the first `capacity` bytes of buf as the object's item, of which `length` are its value. Lock held. */
  private storeWithRoom(keyBytes: Uint8Array, keyLen: number, buf: Uint8Array, length: number, capacity: number): LogState | 0 {
    const store = this.store;
    if (store.store(StoreMode.Set, keyBytes, 0, keyLen, 0, 0, buf, 0, capacity, 0, Namespace.Objects) !== StoreResult.Stored) return 0;
    const it = store.find(keyBytes, 0, keyLen, Namespace.Objects);
    setValueLength(store.arena, it, length);
    return { version: store.casOf(it), length };
  }

  /** A reused buffer of at least n bytes (contents undefined). */
  private scratchFor(n: number): Uint8Array {
    if (this.scratch.length < n) this.scratch = new Uint8Array(Math.max(n, this.scratch.length * 2));
    return this.scratch;
  }

  changeCount(): number {
    return this.everyReadCounts ? -1 : this.store.lock.readBegin();
  }

  clockSeconds(): number {
    return this.store.clock.now;
  }

  exclusive<T>(fn: () => T): T {
    return this.store.objectsLock.hold(fn);
  }
}
