/**
 * The reference: an exact global LRU over key indices with a byte budget. A set evicts from the
 * least recently used end until the new item fits; a hit moves the item to the most recent end.
 * What an item costs is a per-key table, so the same model measures payload bytes (key + value)
 * or cacheismo's item cost (header + key + value, rounded up to its allocation unit).
 *
 * Expiry-aware when keys have TTLs: a key set at time t (seconds) with TTL s expires once the
 * whole-second clock reaches floor(t) + s, as a server's clock does, and its memory is free at
 * that moment (expire(now) before each exchange), never evicting a live key while it is held.
 */
import { MinHeap } from "./min-heap.ts";

const NONE = -1;

/** cacheismo's item layout (src/store/item.ts HEADER_BYTES, src/store/arena.ts UNIT_BYTES). */
export const CACHEISMO_HEADER_BYTES = 56;
export const CACHEISMO_UNIT_BYTES = 32;

export function payloadCost(keyBytes: number, valueBytes: number): number {
  return keyBytes + valueBytes;
}

export function cacheismoItemCost(keyBytes: number, valueBytes: number): number {
  const bytes = CACHEISMO_HEADER_BYTES + keyBytes + valueBytes;
  return Math.ceil(bytes / CACHEISMO_UNIT_BYTES) * CACHEISMO_UNIT_BYTES;
}

export class IdealLru {
  usedBytes = 0;
  items = 0;
  evictions = 0;
  /** Most recently used key, or NONE. */
  private head = NONE;
  /** Least recently used key, or NONE: the next victim. */
  private tail = NONE;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly present: Uint8Array;
  /** Whole second at which a held key expires (0: never). */
  private readonly expiresAt: Float64Array;
  /** (expiry second, key); an entry is stale once its key was removed or set again. */
  private readonly byExpiry = new MinHeap();

  /** `costs[k]` is what key k occupies while cached; `ttls[k]` its TTL in seconds (0: none). */
  constructor(
    private readonly costs: Int32Array,
    readonly budgetBytes: number,
    private readonly ttls: Int32Array = new Int32Array(costs.length),
  ) {
    this.prev = new Int32Array(costs.length).fill(NONE);
    this.next = new Int32Array(costs.length).fill(NONE);
    this.present = new Uint8Array(costs.length);
    this.expiresAt = new Float64Array(costs.length);
  }

  /** Frees every key expired at `nowSeconds` (not counted as evictions). */
  expire(nowSeconds: number): void {
    const second = Math.floor(nowSeconds);
    const heap = this.byExpiry;
    while (heap.size > 0 && heap.topPriority() <= second) {
      const key = heap.topKey();
      const at = heap.topPriority();
      heap.pop();
      if (this.present[key] === 1 && this.expiresAt[key] === at) this.remove(key);
    }
  }

  /** A lookup: true on a hit, which also makes the key the most recently used. */
  get(key: number): boolean {
    if (this.present[key] === 0) return false;
    if (this.head !== key) {
      this.unlink(key);
      this.pushHead(key);
    }
    return true;
  }

  /** Stores the key at `nowSeconds` as most recently used, evicting LRU-first to make room. False if it can never fit. */
  set(key: number, nowSeconds = 0): boolean {
    if (this.present[key] === 1) this.remove(key);
    const cost = this.costs[key];
    if (cost > this.budgetBytes) return false;
    while (this.usedBytes + cost > this.budgetBytes) {
      this.remove(this.tail);
      this.evictions++;
    }
    this.present[key] = 1;
    this.usedBytes += cost;
    this.items++;
    this.pushHead(key);
    const ttl = this.ttls[key];
    this.expiresAt[key] = ttl === 0 ? 0 : Math.floor(nowSeconds) + ttl;
    if (ttl !== 0) this.byExpiry.push(this.expiresAt[key], key);
    return true;
  }

  /** Keys from least to most recently used. */
  *keysLruFirst(): Generator<number> {
    for (let k = this.tail; k !== NONE; k = this.prev[k]) yield k;
  }

  private remove(key: number): void {
    this.unlink(key);
    this.present[key] = 0;
    this.usedBytes -= this.costs[key];
    this.items--;
  }

  private unlink(key: number): void {
    const p = this.prev[key];
    const n = this.next[key];
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
  }

  private pushHead(key: number): void {
    this.prev[key] = NONE;
    this.next[key] = this.head;
    if (this.head !== NONE) this.prev[this.head] = key;
    else this.tail = key;
    this.head = key;
  }
}
