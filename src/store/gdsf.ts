/**
 * GreedyDual-Size-Frequency (Cherkasova 1998), the size-aware policy (--eviction gdsf).
 *
 * Each item has priority H = L + frequency / size; the victim is the item with the lowest H, and
 * evicting it raises the inflation value L to its H, so items that stop being used age out. Small,
 * often-read items stay; large, rarely-read ones go first. A binary min-heap in typed arrays keeps
 * this O(log n) per operation; an item's heap position and frequency live in its header (the
 * fields the LRU policy uses for its links).
 */
import type { Arena } from "./arena.ts";
import { F_LRU_NEXT as F_FREQ, F_LRU_PREV as F_HEAP_POS } from "./item.ts";
import type { EvictionPolicy } from "./policy.ts";

export class GdsfHeap implements EvictionPolicy {
  length = 0;
  private inflation = 0;
  private items = new Uint32Array(1024);
  private priority = new Float64Array(1024);
  private size = new Float64Array(1024);

  constructor(private readonly arena: Arena) {}

  insert(item: number, bytes: number): void {
    if (this.length === this.items.length) this.grow();
    this.arena.setWord(item, F_FREQ, 1);
    const i = this.length++;
    this.items[i] = item;
    this.size[i] = bytes;
    this.priority[i] = this.inflation + 1 / bytes;
    this.arena.setWord(item, F_HEAP_POS, i);
    this.up(i);
  }

  remove(item: number): void {
    const i = this.arena.getWord(item, F_HEAP_POS);
    const last = --this.length;
    if (i !== last) {
      this.move(last, i);
      this.down(i);
      this.up(i);
    }
  }

  touch(item: number): void {
    const arena = this.arena;
    const freq = arena.getWord(item, F_FREQ) + 1;
    arena.setWord(item, F_FREQ, freq);
    const i = arena.getWord(item, F_HEAP_POS);
    this.priority[i] = this.inflation + freq / this.size[i];
    this.down(i);
  }

  victim(): number {
    if (this.length === 0) return 0;
    this.inflation = this.priority[0];
    return this.items[0];
  }

  clear(): void {
    this.length = 0;
    this.inflation = 0;
  }

  forEach(fn: (item: number) => void): void {
    for (let i = 0; i < this.length; i++) {
      if (this.arena.getWord(this.items[i], F_HEAP_POS) !== i) throw new Error(`gdsf: item ${this.items[i]} has a stale heap position`);
      if (i > 0 && this.priority[(i - 1) >> 1] > this.priority[i]) throw new Error(`gdsf: heap order broken at ${i}`);
      fn(this.items[i]);
    }
  }

  private up(i: number): void {
    const { items, priority, size } = this;
    const item = items[i];
    const p = priority[i];
    const s = size[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (priority[parent] <= p) break;
      this.move(parent, i);
      i = parent;
    }
    this.place(i, item, p, s);
  }

  private down(i: number): void {
    const { items, priority, size } = this;
    const item = items[i];
    const p = priority[i];
    const s = size[i];
    const n = this.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && priority[child + 1] < priority[child]) child++;
      if (priority[child] >= p) break;
      this.move(child, i);
      i = child;
    }
    this.place(i, item, p, s);
  }

  private move(from: number, to: number): void {
    this.place(to, this.items[from], this.priority[from], this.size[from]);
  }

  private place(i: number, item: number, p: number, s: number): void {
    this.items[i] = item;
    this.priority[i] = p;
    this.size[i] = s;
    this.arena.setWord(item, F_HEAP_POS, i);
  }

  private grow(): void {
    const items = new Uint32Array(this.items.length * 2);
    items.set(this.items);
    const priority = new Float64Array(items.length);
    priority.set(this.priority);
    const size = new Float64Array(items.length);
    size.set(this.size);
    this.items = items;
    this.priority = priority;
    this.size = size;
  }
}
