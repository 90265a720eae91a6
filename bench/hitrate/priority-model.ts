/**
 * A model cache that evicts by priority, GreedyDual style: an item's priority is L + value / cost,
 * the victim is the lowest, and evicting it raises L to its priority. What `value` is decides the
 * policy:
 * - "gdsf": the hits the item has had since it was stored (cacheismo's --eviction gdsf);
 * - "gdsf-ttl": the same times the share of `horizonSeconds` the item has left before it expires
 *   (what an online policy can do with a TTL: its hits stand in for the rate);
 * - "popularity": the key's true request rate, known in advance (a clairvoyant LFU: no policy that
 *   learns popularity from the requests it sees can know it better);
 * - "popularity-ttl": the same times the seconds the item has left before it expires, capped at
 *   `horizonSeconds`: the hits it can still get, for a key with a TTL.
 * Item cost and expiry as the ideal LRU's (lru-model.ts): cacheismo's item cost, the whole-second
 * clock, expired memory free at once. Priorities are set when an item is stored or hit.
 */
import { cacheismoItemCost } from "./lru-model.ts";
import { MinHeap } from "./min-heap.ts";
import type { CacheUnderTest } from "./replay.ts";

export type PriorityValue = "gdsf" | "gdsf-ttl" | "popularity" | "popularity-ttl";

export class PriorityCache implements CacheUnderTest {
  readonly waitsForTime = false;
  private readonly present: Uint8Array;
  /** Bumped whenever a key's heap entries go stale (stored again, hit, removed). */
  private readonly version: Int32Array;
  private readonly hits: Float64Array;
  private readonly cost: Int32Array;
  /** Whole second at which the held item expires (Infinity: never). */
  private readonly expiresAt: Float64Array;
  private readonly byPriority = new MinHeap();
  private readonly byExpiry = new MinHeap();
  private usedBytes = 0;
  private inflation = 0;
  private now = 0;

  /** `requestRate[g]`: key g's requests per second (read by the popularity values only). */
  constructor(
    private readonly budgetBytes: number,
    keyBytes: number,
    sizes: Int32Array,
    private readonly ttls: Int32Array,
    private readonly value: PriorityValue,
    private readonly requestRate: Float64Array,
    private readonly horizonSeconds = Infinity,
  ) {
    const n = sizes.length;
    this.present = new Uint8Array(n);
    this.version = new Int32Array(n);
    this.hits = new Float64Array(n);
    this.expiresAt = new Float64Array(n);
    this.cost = new Int32Array(n);
    for (let g = 0; g < n; g++) this.cost[g] = cacheismoItemCost(keyBytes, sizes[g]);
  }

  exchange(sets: Int32Array, gets: Int32Array, hits: Uint8Array, nowSeconds: number): void {
    this.now = nowSeconds;
    this.expire();
    for (const g of sets) this.store(g);
    for (let i = 0; i < gets.length; i++) {
      const g = gets[i];
      if (this.present[g] === 0) {
        hits[i] = 0;
        continue;
      }
      hits[i] = 1;
      this.hits[g]++;
      this.prioritize(g);
    }
  }

  private store(g: number): void {
    if (this.present[g] === 1) this.remove(g);
    const cost = this.cost[g];
    if (cost > this.budgetBytes) return;
    while (this.usedBytes + cost > this.budgetBytes) this.evictOne();
    this.present[g] = 1;
    this.usedBytes += cost;
    this.hits[g] = 1;
    this.expiresAt[g] = this.ttls[g] > 0 ? Math.floor(this.now) + this.ttls[g] : Infinity;
    this.prioritize(g);
  }

  private prioritize(g: number): void {
    const v = ++this.version[g];
    this.byPriority.push(this.inflation + this.valueOf(g) / this.cost[g], g, v);
    if (this.expiresAt[g] !== Infinity) this.byExpiry.push(this.expiresAt[g], g, v);
  }

  private valueOf(g: number): number {
    if (this.value === "gdsf") return this.hits[g];
    if (this.value === "popularity") return this.requestRate[g];
    const left = Math.min(Math.max(0, this.expiresAt[g] - this.now), this.horizonSeconds);
    if (this.value === "gdsf-ttl") return (this.hits[g] * left) / this.horizonSeconds;
    return this.requestRate[g] * left;
  }

  private evictOne(): void {
    const heap = this.byPriority;
    for (;;) {
      const g = heap.topKey();
      const live = this.present[g] === 1 && this.version[g] === heap.topTag();
      const p = heap.topPriority();
      heap.pop();
      if (!live) continue;
      this.inflation = p;
      this.remove(g);
      return;
    }
  }

  /** Frees every item whose whole-second expiry has come. */
  private expire(): void {
    const heap = this.byExpiry;
    const second = Math.floor(this.now);
    while (heap.size > 0 && heap.topPriority() <= second) {
      const g = heap.topKey();
      const v = heap.topTag();
      heap.pop();
      if (this.present[g] === 1 && this.version[g] === v) this.remove(g);
    }
  }

  private remove(g: number): void {
    this.present[g] = 0;
    this.version[g]++;
    this.usedBytes -= this.cost[g];
  }
}
