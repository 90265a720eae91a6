/**
 * String-keyed access to the store for the scripting engine: Lua objects are ordinary items
 * (same memory limit, same eviction). This is the slow, allocating path that only virtual keys
 * take; plain get/set never come here.
 */
import type { ObjectStoreAccess } from "../scripting/store-access.ts";
import { type Store, StoreMode, StoreResult } from "./store.ts";

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export class StoreObjectAccess implements ObjectStoreAccess {
  /** Object keys are encoded here rather than into a new array per call (UTF-8: ≤ 3 bytes a unit). */
  private keyBytes = new Uint8Array(1024);

  constructor(private readonly store: Store) {}

  /** Encodes key into keyBytes; returns its length in bytes. */
  private encodeKey(key: string): number {
    if (key.length * 3 > this.keyBytes.length) this.keyBytes = new Uint8Array(key.length * 3);
    return utf8.encodeInto(key, this.keyBytes).written;
  }

  get(key: string): { data: Uint8Array; flags: number; exptime: number } | null {
    const len = this.encodeKey(key);
    const it = this.store.get(this.keyBytes, 0, len);
    if (it === 0) return null;
    const data = new Uint8Array(this.store.valueLength(it));
    this.store.copyValueTo(it, data, 0);
    return { data, flags: this.store.flagsOf(it), exptime: this.store.expiryOf(it) };
  }

  version(key: string): number | null {
    const len = this.encodeKey(key);
    const it = this.store.get(this.keyBytes, 0, len);
    return it === 0 ? null : this.store.casOf(it);
  }

  set(key: string, data: Uint8Array, flags: number, exptime: number): number {
    const len = this.encodeKey(key);
    const keyBytes = this.keyBytes;
    if (this.store.store(StoreMode.Set, keyBytes, 0, len, flags, exptime, data, 0, data.length, 0) !== StoreResult.Stored) return 0;
    return this.store.casOf(this.store.find(keyBytes, 0, len));
  }

  delete(key: string): boolean {
    const len = this.encodeKey(key);
    return this.store.delete(this.keyBytes, 0, len);
  }

  keysWithPrefix(prefix: string): string[] {
    const p = utf8.encode(prefix);
    const keys: string[] = [];
    const buf = new Uint8Array(1024);
    this.store.forEachItem((it) => {
      const len = this.store.keyLength(it);
      if (len < p.length || len > buf.length) return;
      this.store.copyKeyTo(it, buf, 0);
      for (let i = 0; i < p.length; i++) if (buf[i] !== p[i]) return;
      keys.push(utf8Decoder.decode(buf.subarray(0, len)));
    });
    return keys;
  }

  evictLRU(bytes: number): number {
    return this.store.evictBytes(bytes);
  }
}
