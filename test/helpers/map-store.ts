/**
 * A Map-backed ObjectStoreAccess for scripting unit tests, where a test needs to look inside the
 * store or make it fail. Map order is the LRU order (first = least recently used).
 */
import type { ObjectStoreAccess } from "../../src/scripting/store-access.ts";

export interface Item {
  data: Uint8Array;
  flags: number;
  exptime: number;
  version: number;
}

export class MapStore implements ObjectStoreAccess {
  readonly items = new Map<string, Item>();
  /** When set, every set() fails as an out-of-memory store would. */
  refuseSets = false;
  /** When set, get() throws it (an engine failure outside Lua). */
  failWith: Error | null = null;
  private lastVersion = 0;

  get(key: string): Item | null {
    if (this.failWith !== null) throw this.failWith;
    const item = this.items.get(key);
    if (item === undefined) return null;
    this.items.delete(key);
    this.items.set(key, item);
    return item;
  }

  version(key: string): number | null {
    return this.get(key)?.version ?? null;
  }

  set(key: string, data: Uint8Array, flags: number, exptime: number): number {
    if (this.refuseSets) return 0;
    this.items.delete(key);
    const version = ++this.lastVersion;
    this.items.set(key, { data: data.slice(), flags, exptime, version });
    return version;
  }

  delete(key: string): boolean {
    return this.items.delete(key);
  }

  keysWithPrefix(prefix: string): string[] {
    return [...this.items.keys()].filter((k) => k.startsWith(prefix));
  }

  evictLRU(bytes: number): number {
    let freed = 0;
    for (const [key, item] of this.items) {
      if (freed >= bytes) break;
      this.items.delete(key);
      freed += key.length + item.data.length;
    }
    return freed;
  }

  /** Plants a plain item, as a client's set would. */
  put(key: string, data: string, flags = 0): void {
    this.set(key, new TextEncoder().encode(data), flags, 0);
  }

  exclusive<T>(fn: () => T): T {
    return fn();
  }
}
