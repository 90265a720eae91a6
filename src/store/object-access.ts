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
  constructor(private readonly store: Store) {}

  get(key: string): { data: Uint8Array; flags: number; exptime: number } | null {
    const k = utf8.encode(key);
    const it = this.store.get(k, 0, k.length);
    if (it === 0) return null;
    const data = new Uint8Array(this.store.valueLength(it));
    this.store.copyValueTo(it, data, 0);
    return { data, flags: this.store.flagsOf(it), exptime: this.store.expiryOf(it) };
  }

  set(key: string, data: Uint8Array, flags: number, exptime: number): boolean {
    const k = utf8.encode(key);
    return this.store.store(StoreMode.Set, k, 0, k.length, flags, exptime, data, 0, data.length, 0) === StoreResult.Stored;
  }

  delete(key: string): boolean {
    const k = utf8.encode(key);
    return this.store.delete(k, 0, k.length);
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
