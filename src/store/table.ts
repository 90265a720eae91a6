/**
 * The hash index: a power-of-two bucket array of item units, chained through each item's
 * F_HASH_NEXT field. Each item keeps its 32-bit hash so the table can grow without reading keys.
 *
 * The buckets live in a growable SharedArrayBuffer reserved up front for the most items the arena
 * can hold, so every thread's view follows a growth without being told; the mask and the item
 * count live in a shared word pair beside it.
 */
import type { Arena } from "./arena.ts";
import { MAX_GROWABLE_BYTES, mostItems } from "./growable.ts";
import { F_HASH, F_HASH_NEXT } from "./item.ts";

const INITIAL_BUCKETS = 1 << 16;
const META_MASK = 0;
/** 128 bytes from the mask: a lock-free read reads the mask, every insert and removal writes the count. */
const META_COUNT = 32;

/** The index's shared state: what another thread needs to attach the same table. */
export interface TableMemory {
  readonly buckets: SharedArrayBuffer;
  readonly meta: SharedArrayBuffer;
}

/** A new, empty index for an arena of `totalUnits` units. */
export function createTableMemory(totalUnits: number): TableMemory {
  // The table grows when it holds 1.5 items per bucket: reserve what the fullest arena needs.
  let most = INITIAL_BUCKETS;
  while (most * 1.5 < mostItems(totalUnits) && most * 8 <= MAX_GROWABLE_BYTES) most *= 2;
  const buckets = new SharedArrayBuffer(INITIAL_BUCKETS * 4, { maxByteLength: most * 4 });
  const meta = new SharedArrayBuffer((META_COUNT + 1) * 4);
  new Uint32Array(meta)[META_MASK] = INITIAL_BUCKETS - 1;
  return { buckets, meta };
}

export class HashTable {
  /** Length-tracking: follows the buffer when any thread grows it. */
  private readonly buckets: Uint32Array;
  private readonly meta: Uint32Array;

  constructor(
    private readonly arena: Arena,
    readonly memory: TableMemory,
  ) {
    this.buckets = new Uint32Array(memory.buckets);
    this.meta = new Uint32Array(memory.meta);
  }

  get count(): number {
    return this.meta[META_COUNT];
  }

  /** First item in the chain for `hash` (follow F_HASH_NEXT). */
  head(hash: number): number {
    return this.buckets[hash & this.meta[META_MASK]];
  }

  insert(item: number, hash: number): void {
    const arena = this.arena;
    const meta = this.meta;
    arena.setWord(item, F_HASH, hash);
    const b = hash & meta[META_MASK];
    arena.setWord(item, F_HASH_NEXT, this.buckets[b]);
    this.buckets[b] = item;
    const size = meta[META_MASK] + 1;
    if (++meta[META_COUNT] > size + (size >>> 1)) this.grow();
  }

  remove(item: number): void {
    const arena = this.arena;
    const b = arena.getWord(item, F_HASH) & this.meta[META_MASK];
    let cur = this.buckets[b];
    if (cur === item) {
      this.buckets[b] = arena.getWord(item, F_HASH_NEXT);
    } else {
      while (cur !== 0) {
        const next = arena.getWord(cur, F_HASH_NEXT);
        if (next === item) {
          arena.setWord(cur, F_HASH_NEXT, arena.getWord(item, F_HASH_NEXT));
          break;
        }
        cur = next;
      }
      if (cur === 0) throw new Error(`hash table: item ${item} not in its chain`);
    }
    this.meta[META_COUNT]--;
  }

  /** Empties the index (a shared buffer cannot shrink: it keeps its size). */
  clear(): void {
    this.buckets.fill(0, 0, this.meta[META_MASK] + 1);
    this.meta[META_COUNT] = 0;
  }

  /**
   * Calls fn for every item (order undefined). The next link is read before fn runs, so fn may
   * unlink or free the item it is given, but no other.
   */
  forEach(fn: (item: number) => void): void {
    const arena = this.arena;
    const size = this.meta[META_MASK] + 1;
    for (let b = 0; b < size; b++) {
      for (let it = this.buckets[b]; it !== 0; ) {
        const next = arena.getWord(it, F_HASH_NEXT);
        fn(it);
        it = next;
      }
    }
  }

  get bucketCount(): number {
    return this.meta[META_MASK] + 1;
  }

  /**
   * Doubles the buckets in place: each chain of the old half splits between its bucket and the
   * one `size` above it, by the hash bit the new mask adds. At the reservation's end chains just
   * grow longer.
   */
  private grow(): void {
    const sab = this.memory.buckets;
    const size = this.meta[META_MASK] + 1;
    if (size * 8 > sab.maxByteLength) return;
    sab.grow(size * 8);
    const arena = this.arena;
    const buckets = this.buckets;
    for (let b = 0; b < size; b++) {
      let it = buckets[b];
      let low = 0;
      let high = 0;
      while (it !== 0) {
        const following = arena.getWord(it, F_HASH_NEXT);
        if ((arena.getWord(it, F_HASH) & size) === 0) {
          arena.setWord(it, F_HASH_NEXT, low);
          low = it;
        } else {
          arena.setWord(it, F_HASH_NEXT, high);
          high = it;
        }
        it = following;
      }
      buckets[b] = low;
      buckets[b + size] = high;
    }
    this.meta[META_MASK] = size * 2 - 1;
  }
}
