/**
 * The default policy, exact global LRU: one doubly linked list through every item's header,
 * head = most recent. A hit moves the item to the head; the victim is the tail, whatever its size.
 */
import type { Arena } from "./arena.ts";
import { F_LRU_NEXT, F_LRU_PREV } from "./item.ts";
import type { EvictionPolicy } from "./policy.ts";

export class LruList implements EvictionPolicy {
  head = 0;
  tail = 0;
  length = 0;

  constructor(private readonly arena: Arena) {}

  insert(item: number): void {
    const arena = this.arena;
    arena.setWord(item, F_LRU_PREV, 0);
    arena.setWord(item, F_LRU_NEXT, this.head);
    if (this.head !== 0) arena.setWord(this.head, F_LRU_PREV, item);
    else this.tail = item;
    this.head = item;
    this.length++;
  }

  remove(item: number): void {
    const arena = this.arena;
    const prev = arena.getWord(item, F_LRU_PREV);
    const next = arena.getWord(item, F_LRU_NEXT);
    if (prev !== 0) arena.setWord(prev, F_LRU_NEXT, next);
    else this.head = next;
    if (next !== 0) arena.setWord(next, F_LRU_PREV, prev);
    else this.tail = prev;
    this.length--;
  }

  touch(item: number): void {
    if (this.head === item) return;
    this.remove(item);
    this.insert(item);
  }

  victim(): number {
    return this.tail;
  }

  clear(): void {
    this.head = 0;
    this.tail = 0;
    this.length = 0;
  }

  /** Walks head to tail checking the links; the next link is read before fn runs. */
  forEach(fn: (item: number) => void): void {
    const arena = this.arena;
    let n = 0;
    for (let it = this.head, prev = 0; it !== 0; ) {
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
