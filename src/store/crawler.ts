/**
 * The expiry crawler: frees expired items before eviction takes live ones, a bounded slice at a
 * time (memcached's LRU crawler, walking the hash index instead of the LRU). Each slice starts at
 * a cursor kept in shared memory, so every thread's slice goes on where the last one, on any
 * thread, stopped: the whole index is walked round and round, however many threads share it.
 * Callers hold the store's lock; the store decides when a slice runs (before an eviction, and
 * from a server timer) and how an expired item is freed.
 */
import type { Arena } from "./arena.ts";
import type { Clock } from "./clock.ts";
import { F_EXPTIME, F_HASH_NEXT } from "./item.ts";
import type { HashTable } from "./table.ts";

/** Float64 cells of the crawler's shared state. */
const CURSOR = 0;
const ITEMS_CHECKED = 1;
const RECLAIMED = 2;
export const CRAWLER_CELLS = 3;

/** Frees an expired item met by the crawler; false when the item must stay (held out by the caller). */
export type ReclaimExpired = (item: number) => boolean;

export class ExpiryCrawler {
  constructor(
    private readonly arena: Arena,
    private readonly table: HashTable,
    private readonly clock: Clock,
    /** CRAWLER_CELLS Float64 cells in shared memory. */
    private readonly cells: Float64Array,
    private readonly reclaim: ReclaimExpired,
  ) {}

  /** Items looked at by every slice so far (stats `crawler_items_checked`). */
  get itemsChecked(): number {
    return this.cells[ITEMS_CHECKED];
  }

  set itemsChecked(n: number) {
    this.cells[ITEMS_CHECKED] = n;
  }

  /** Expired items the slices freed (stats `crawler_reclaimed`). */
  get reclaimed(): number {
    return this.cells[RECLAIMED];
  }

  set reclaimed(n: number) {
    this.cells[RECLAIMED] = n;
  }

  /**
   * Walks whole buckets from the cursor until `maxItems` items or `maxBuckets` buckets have been
   * looked at (so at most maxItems plus one chain's items), freeing the expired ones. Returns the
   * number freed.
   */
  slice(maxItems: number, maxBuckets: number): number {
    const arena = this.arena;
    const table = this.table;
    const cells = this.cells;
    const now = this.clock.now;
    // Buckets only double and a flush keeps their number; masked, any cursor is a bucket.
    const mask = table.bucketCount - 1;
    let bucket = cells[CURSOR] & mask;
    let items = 0;
    let freed = 0;
    for (let n = 0; n < maxBuckets && items < maxItems; n++) {
      for (let it = table.head(bucket); it !== 0; ) {
        const next = arena.getWord(it, F_HASH_NEXT);
        const exptime = arena.getWord(it, F_EXPTIME);
        if (exptime !== 0 && exptime <= now && this.reclaim(it)) freed++;
        items++;
        it = next;
      }
      bucket = (bucket + 1) & mask;
    }
    cells[CURSOR] = bucket;
    cells[ITEMS_CHECKED] += items;
    cells[RECLAIMED] += freed;
    return freed;
  }
}
