/**
 * GreedyDual-Size-Frequency (Cherkasova 1998), the size-aware policy (--eviction gdsf).
 *
 * Each item has priority H = L + frequency / size; the victim is the item with the lowest H, and
 * evicting it raises the inflation value L to its H, so items that stop being used age out. Small,
 * often-read items stay; large, rarely-read ones go first. A binary min-heap in typed arrays keeps
 * this O(log n) per operation; an item's heap position and frequency live in its header (the
 * fields the LRU policy uses for its links).
 *
 * The heap's arrays are growable SharedArrayBuffers reserved for the most items the arena can
 * hold; its length and the inflation value are a shared pair (GdsfMemory).
 */
import type { Arena } from "./arena.ts";
import { F_LRU_NEXT as F_FREQ, F_LRU_PREV as F_HEAP_POS } from "./item.ts";
import { MAX_GROWABLE_BYTES, mostItems } from "./growable.ts";
import type { EvictionPolicy } from "./policy.ts";

const INITIAL_ENTRIES = 1024;
const LENGTH = 0;
const INFLATION = 1;

export interface GdsfMemory {
  readonly kind: "gdsf";
  readonly items: SharedArrayBuffer;
  readonly priority: SharedArrayBuffer;
  readonly size: SharedArrayBuffer;
  readonly state: SharedArrayBuffer;
}

export function createGdsfMemory(totalUnits: number): GdsfMemory {
  const most = Math.min(Math.max(INITIAL_ENTRIES, mostItems(totalUnits)), MAX_GROWABLE_BYTES / 8);
  const growable = (bytesPerEntry: number): SharedArrayBuffer =>
    new SharedArrayBuffer(INITIAL_ENTRIES * bytesPerEntry, { maxByteLength: most * bytesPerEntry });
  return { kind: "gdsf", items: growable(4), priority: growable(8), size: growable(8), state: new SharedArrayBuffer(16) };
}

export class GdsfHeap implements EvictionPolicy {
  /** Length-tracking views: they follow the buffers when any thread grows them. */
  private readonly items: Uint32Array;
  private readonly priority: Float64Array;
  private readonly size: Float64Array;
  /** The heap's length and the inflation value L. */
  private readonly state: Float64Array;

  constructor(
    private readonly arena: Arena,
    readonly memory: GdsfMemory,
  ) {
    this.items = new Uint32Array(memory.items);
    this.priority = new Float64Array(memory.priority);
    this.size = new Float64Array(memory.size);
    this.state = new Float64Array(memory.state);
  }

  get length(): number {
    return this.state[LENGTH];
  }

  insert(item: number, bytes: number): void {
    if (this.state[LENGTH] === this.items.length) this.grow();
    this.arena.setWord(item, F_FREQ, 1);
    const i = this.state[LENGTH]++;
    this.items[i] = item;
    this.size[i] = bytes;
    this.priority[i] = this.state[INFLATION] + 1 / bytes;
    this.arena.setWord(item, F_HEAP_POS, i);
    this.up(i);
  }

  remove(item: number): void {
    const i = this.arena.getWord(item, F_HEAP_POS);
    const last = --this.state[LENGTH];
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
    this.priority[i] = this.state[INFLATION] + freq / this.size[i];
    this.down(i);
  }

  victim(): number {
    if (this.state[LENGTH] === 0) return 0;
    this.state[INFLATION] = this.priority[0];
    return this.items[0];
  }

  /** Every GDSF hit raises the item's priority. */
  recentlyUsed(_item: number): boolean {
    return false;
  }

  clear(): void {
    this.state.fill(0);
  }

  forEachOldestFirst(fn: (item: number) => void): void {
    for (let i = 0; i < this.state[LENGTH]; i++) fn(this.items[i]);
  }

  forEach(fn: (item: number) => void): void {
    for (let i = 0; i < this.state[LENGTH]; i++) {
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
    const n = this.state[LENGTH];
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

  /** Doubles the arrays in place, within the reservation (2^28 entries: every item of a 16 GiB arena). */
  private grow(): void {
    const { items, priority, size } = this.memory;
    const entries = Math.min(this.items.length * 2, items.maxByteLength / 4);
    if (entries === this.items.length) throw new RangeError(`gdsf: more than ${entries} items`);
    items.grow(entries * 4);
    priority.grow(entries * 8);
    size.grow(entries * 8);
  }
}
