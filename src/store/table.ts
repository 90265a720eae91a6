/**
 * The hash index: a power-of-two bucket array of item units, chained through each item's
 * F_HASH_NEXT field. Each item keeps its 32-bit hash so the table can grow without reading keys.
 */
import type { Arena } from "./arena.ts";
import { F_HASH, F_HASH_NEXT } from "./item.ts";

const INITIAL_BUCKETS = 1 << 16;

export class HashTable {
  private buckets = new Uint32Array(INITIAL_BUCKETS);
  private mask = INITIAL_BUCKETS - 1;
  count = 0;

  constructor(private readonly arena: Arena) {}

  /** First item in the chain for `hash` (follow F_HASH_NEXT). */
  head(hash: number): number {
    return this.buckets[hash & this.mask];
  }

  insert(item: number, hash: number): void {
    const arena = this.arena;
    arena.setWord(item, F_HASH, hash);
    const b = hash & this.mask;
    arena.setWord(item, F_HASH_NEXT, this.buckets[b]);
    this.buckets[b] = item;
    if (++this.count > this.buckets.length + (this.buckets.length >>> 1)) this.grow();
  }

  remove(item: number): void {
    const arena = this.arena;
    const b = arena.getWord(item, F_HASH) & this.mask;
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
    this.count--;
  }

  clear(): void {
    this.buckets = new Uint32Array(INITIAL_BUCKETS);
    this.mask = INITIAL_BUCKETS - 1;
    this.count = 0;
  }

  /**
   * Calls fn for every item (order undefined). The next link is read before fn runs, so fn may
   * unlink or free the item it is given, but no other.
   */
  forEach(fn: (item: number) => void): void {
    const arena = this.arena;
    for (let b = 0; b < this.buckets.length; b++) {
      for (let it = this.buckets[b]; it !== 0; ) {
        const next = arena.getWord(it, F_HASH_NEXT);
        fn(it);
        it = next;
      }
    }
  }

  get bucketCount(): number {
    return this.buckets.length;
  }

  private grow(): void {
    const arena = this.arena;
    const old = this.buckets;
    const next = new Uint32Array(old.length * 2);
    const mask = next.length - 1;
    for (let b = 0; b < old.length; b++) {
      let it = old[b];
      while (it !== 0) {
        const following = arena.getWord(it, F_HASH_NEXT);
        const nb = arena.getWord(it, F_HASH) & mask;
        arena.setWord(it, F_HASH_NEXT, next[nb]);
        next[nb] = it;
        it = following;
      }
    }
    this.buckets = next;
    this.mask = mask;
  }
}
