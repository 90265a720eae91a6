/**
 * The default policy, exact global LRU: one doubly linked list through every item's header,
 * head = most recent. A hit moves the item to the head; the victim is the tail, whatever its size.
 * The links are in the arena; head, tail and length in a shared word triple (LruMemory).
 */
import type { Arena } from "./arena.ts";
import { F_LRU_NEXT, F_LRU_PREV } from "./item.ts";
import type { EvictionPolicy } from "./policy.ts";

const HEAD = 0;
const TAIL = 1;
const LENGTH = 2;

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
    if (this.ends[HEAD] === item) return;
    this.remove(item);
    this.insert(item);
  }

  victim(): number {
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
