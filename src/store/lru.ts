/**
 * The default policy, a global LRU with second chance (CLOCK over one list): one doubly linked list
 * through every item's header, head = most recently inserted. A hit only marks the item (one
 * word, written once; later hits write nothing). The victim is the tail, whatever its size; a
 * marked tail is unmarked and goes back to the head instead (its second chance), at most
 * MAX_SECOND_CHANCES times per eviction, so one eviction is bounded work. The links are in the
 * arena; head, tail and length in shared words (LruMemory).
 *
 * Why not move an item on every hit: a move writes the item, both its neighbours and the head,
 * under the store lock, and with several threads the head's cache line goes from core to core on
 * every hit. memcached moves an item at most once a minute for the same reason. With a mark, a
 * hit on a marked item writes nothing, so reads run without the lock (Store.peek), and the
 * eviction order is still global and close to LRU: bench/policy-replay.ts gives W1-W4 61.78 /
 * 58.02 / 92.68 / 83.22 % against the exact list's 60.81 / 57.00 / 92.68 / 83.22 (ideal LRU,
 * bench/hitrate), and 68.15 / 63.80 / 65.68 % on T0-T2 against the ideal expiry-aware LRU's 67.34
 * / 63.62 / 65.24: an item hit once since it last reached the tail outlives one that was not, so
 * one-hit items leave first. (Before, a hit moved an item unless it was within the most recent
 * quarter: 60.57 / 56.77 % on W1/W2, and a lock taken by 3 hits in 4 under uniform access.)
 */
import type { Arena } from "./arena.ts";
import { F_LRU_MARK, F_LRU_NEXT, F_LRU_PREV } from "./item.ts";
import type { EvictionPolicy } from "./policy.ts";

const HEAD = 0;
const TAIL = 1;
const LENGTH = 2;
/** Marked tails sent back to the head by one eviction at most; then the tail goes, marked or not. */
const MAX_SECOND_CHANCES = 1024;

export interface LruMemory {
  readonly kind: "lru";
  readonly ends: SharedArrayBuffer;
}

export function createLruMemory(): LruMemory {
  return { kind: "lru", ends: new SharedArrayBuffer(12) };
}

export class LruList implements EvictionPolicy {
  private readonly ends: Uint32Array;

  constructor(
    private readonly arena: Arena,
    memory: LruMemory,
  ) {
    this.ends = new Uint32Array(memory.ends);
  }

  get length(): number {
    return this.ends[LENGTH];
  }

  insert(item: number): void {
    const arena = this.arena;
    const ends = this.ends;
    const head = ends[HEAD];
    arena.setWord(item, F_LRU_PREV, 0);
    arena.setWord(item, F_LRU_NEXT, head);
    arena.setWord(item, F_LRU_MARK, 0);
    if (head !== 0) arena.setWord(head, F_LRU_PREV, item);
    else ends[TAIL] = item;
    ends[HEAD] = item;
    ends[LENGTH]++;
  }

  remove(item: number): void {
    const arena = this.arena;
    const ends = this.ends;
    const prev = arena.getWord(item, F_LRU_PREV);
    const next = arena.getWord(item, F_LRU_NEXT);
    if (prev !== 0) arena.setWord(prev, F_LRU_NEXT, next);
    else ends[HEAD] = next;
    if (next !== 0) arena.setWord(next, F_LRU_PREV, prev);
    else ends[TAIL] = prev;
    ends[LENGTH]--;
  }

  touch(item: number): void {
    if (!this.recentlyUsed(item)) this.arena.setWord(item, F_LRU_MARK, 1);
  }

  /** Whether the item is marked: a hit then writes nothing. Only reads. */
  recentlyUsed(item: number): boolean {
    return this.arena.getWord(item, F_LRU_MARK) === 1;
  }

  victim(): number {
    const arena = this.arena;
    for (let chances = 0; chances < MAX_SECOND_CHANCES; chances++) {
      const tail = this.ends[TAIL];
      if (tail === 0 || arena.getWord(tail, F_LRU_MARK) !== 1) return tail;
      this.remove(tail);
      this.insert(tail);
    }
    return this.ends[TAIL];
  }

  clear(): void {
    this.ends.fill(0);
  }

  forEachOldestFirst(fn: (item: number) => void): void {
    const arena = this.arena;
    for (let it = this.ends[TAIL]; it !== 0; ) {
      const prev = arena.getWord(it, F_LRU_PREV);
      fn(it);
      it = prev;
    }
  }

  /** Walks head to tail checking the links; the next link is read before fn runs. */
  forEach(fn: (item: number) => void): void {
    const arena = this.arena;
    let n = 0;
    for (let it = this.ends[HEAD], prev = 0; it !== 0; ) {
      if (arena.getWord(it, F_LRU_PREV) !== prev) throw new Error(`lru: bad prev link at ${it}`);
      if (++n > this.length) throw new Error("lru: list longer than its length");
      const next = arena.getWord(it, F_LRU_NEXT);
      fn(it);
      prev = it;
      it = next;
    }
    if (n !== this.length) throw new Error(`lru: ${n} items linked, length ${this.length}`);
  }
}
