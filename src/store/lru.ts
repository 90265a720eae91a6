/** The global LRU: one doubly linked list through every item's header, head = most recent. */
import type { Arena } from "./arena.ts";
import { F_LRU_NEXT, F_LRU_PREV } from "./item.ts";

export class LruList {
  head = 0;
  tail = 0;
  length = 0;

  constructor(private readonly arena: Arena) {}

  pushHead(item: number): void {
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

  /** Moves a linked item to the head (a hit). */
  bump(item: number): void {
    if (this.head === item) return;
    this.remove(item);
    this.pushHead(item);
  }

  clear(): void {
    this.head = 0;
    this.tail = 0;
    this.length = 0;
  }
}
