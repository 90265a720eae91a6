/**
 * String-keyed access to the store for the scripting engine. Lua objects are ordinary items
 * (same memory limit, same eviction) in the store's Objects namespace, which no client command
 * reaches. Key strings carry one byte per character (latin1), so key bytes cross unchanged. This
 * is the slow, allocating path that only virtual keys take; plain get/set never come here.
 * Each call holds the store's lock; `exclusive` holds the objects lock around a run of Lua.
 */
import type { ObjectStoreAccess } from "../scripting/store-access.ts";
import { latin1String } from "../latin1.ts";
import { Namespace } from "./item.ts";
import { type Store, StoreMode, StoreResult } from "./store.ts";

export class StoreObjectAccess implements ObjectStoreAccess {
  /** Object keys are encoded here rather than into a new array per call. */
  private keyBytes = new Uint8Array(1024);

  constructor(private readonly store: Store) {}

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

  exclusive<T>(fn: () => T): T {
    return this.store.objectsLock.hold(fn);
  }
}
