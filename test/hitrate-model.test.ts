/** The hit-ratio bench's generators and ideal LRU model (bench/hitrate/): no servers involved. */
import { describe, expect, test } from "bun:test";
import { IdealLru, cacheismoItemCost, payloadCost } from "../bench/hitrate/lru-model.ts";
import { PriorityCache, type PriorityValue } from "../bench/hitrate/priority-model.ts";
import { Prng } from "../bench/hitrate/prng.ts";
import { ModelCache, replay } from "../bench/hitrate/replay.ts";
import { WORKLOADS, buildTrace, findWorkload, type Trace } from "../bench/hitrate/workloads.ts";
import { Zipf } from "../bench/hitrate/zipf.ts";

const small = (name: string, seed: number): Trace => buildTrace(findWorkload(name), { keys: 2000, requests: 20000, alpha: 1, seed });

describe("generators", () => {
  test("the same seed gives the same trace, sizes and values; another seed does not", () => {
    for (const spec of WORKLOADS) {
      const a = buildTrace(spec, { keys: 2000, requests: 20000, alpha: 1, seed: 7 });
      const b = buildTrace(spec, { keys: 2000, requests: 20000, alpha: 1, seed: 7 });
      const c = buildTrace(spec, { keys: 2000, requests: 20000, alpha: 1, seed: 8 });
      expect(b.requests).toEqual(a.requests);
      expect(b.keyspace.sizes).toEqual(a.keyspace.sizes);
      for (const k of [0, 1, 1999, a.keyspace.count - 1]) {
        expect(b.keyspace.key(k).equals(a.keyspace.key(k))).toBe(true);
        expect(b.keyspace.value(k).equals(a.keyspace.value(k))).toBe(true);
      }
      expect(c.requests).not.toEqual(a.requests);
      expect(c.keyspace.sizes).not.toEqual(a.keyspace.sizes);
    }
  });

  test("keys are fixed width; each phase has its own keys and size range", () => {
    const trace = small("W2", 1);
    const ks = trace.keyspace;
    expect(ks.count).toBe(4000);
    expect(ks.key(0).toString()).toBe("W2a:0000");
    expect(ks.key(3999).toString()).toBe("W2b:1999");
    for (let k = 0; k < ks.count; k++) {
      expect(ks.key(k).length).toBe(ks.keyBytes);
      const [min, max] = k < 2000 ? [64, 1024] : [4096, 65536];
      expect(ks.sizes[k]).toBeGreaterThanOrEqual(min);
      expect(ks.sizes[k]).toBeLessThanOrEqual(max);
      expect(ks.value(k).length).toBe(ks.sizes[k]);
    }
    const n = trace.requests.length;
    expect(trace.measureFrom).toBe(n / 2);
    for (let i = 0; i < n; i++) expect(trace.requests[i] < 2000).toBe(i < n / 2);
  });

  test("sizes are log-uniform: the median is near the geometric mean of the bounds", () => {
    const sizes = [...small("W1", 3).keyspace.sizes].sort((x, y) => x - y);
    const median = sizes[sizes.length >> 1];
    const geometricMean = Math.sqrt(100 * 100 * 1024);
    expect(median / geometricMean).toBeGreaterThan(0.8);
    expect(median / geometricMean).toBeLessThan(1.25);
  });

  test("different keys get different values", () => {
    const ks = small("W3", 1).keyspace;
    const seen = new Set<string>();
    for (let k = 0; k < ks.count; k++) seen.add(ks.value(k).toString("hex"));
    expect(seen.size).toBe(ks.count);
  });
});

describe("zipf", () => {
  test("probabilities follow 1/rank and sum to 1", () => {
    const zipf = new Zipf(1000, 1);
    let sum = 0;
    for (let r = 0; r < 1000; r++) sum += zipf.probability(r);
    expect(sum).toBeCloseTo(1, 9);
    expect(zipf.probability(0) / zipf.probability(1)).toBeCloseTo(2, 9);
    expect(zipf.probability(0) / zipf.probability(9)).toBeCloseTo(10, 9);
  });

  test("samples are skewed as expected", () => {
    const n = 1000;
    const zipf = new Zipf(n, 1);
    const prng = new Prng(42);
    const draws = 200_000;
    const counts = new Int32Array(n);
    for (let i = 0; i < draws; i++) counts[zipf.sample(prng)]++;
    // Rank 0 gets 1 / H(1000) ≈ 13.4 %, the top 10 ranks ≈ 39 %, the bottom half ≈ 9 %.
    const share = (from: number, to: number): number => counts.slice(from, to).reduce((a, b) => a + b, 0) / draws;
    let expectedTop10 = 0;
    let expectedBottomHalf = 0;
    for (let r = 0; r < 10; r++) expectedTop10 += zipf.probability(r);
    for (let r = n / 2; r < n; r++) expectedBottomHalf += zipf.probability(r);
    expect(Math.abs(share(0, 1) - zipf.probability(0))).toBeLessThan(0.005);
    expect(Math.abs(share(0, 10) - expectedTop10)).toBeLessThan(0.005);
    expect(Math.abs(share(n / 2, n) - expectedBottomHalf)).toBeLessThan(0.005);
    expect(counts[0] / counts[1]).toBeGreaterThan(1.8);
    expect(counts[0] / counts[1]).toBeLessThan(2.2);
  });
});

describe("ideal LRU model", () => {
  test("evicts least recently used first until the new item fits", () => {
    const lru = new IdealLru(Int32Array.of(30, 30, 30, 30, 50, 101), 100);
    for (const k of [0, 1, 2]) expect(lru.set(k)).toBe(true);
    expect(lru.get(0)).toBe(true); // order, LRU first: 1 2 0
    lru.set(3); // 120 > 100: evicts 1 only
    expect([...lru.keysLruFirst()]).toEqual([2, 0, 3]);
    expect(lru.get(1)).toBe(false);
    lru.set(4); // 90 + 50: evicts 2, then 0
    expect([...lru.keysLruFirst()]).toEqual([3, 4]);
    expect(lru.usedBytes).toBe(80);
    expect(lru.evictions).toBe(3);
    expect(lru.set(5)).toBe(false); // bigger than the budget: never stored, nothing evicted
    expect([...lru.keysLruFirst()]).toEqual([3, 4]);
    lru.set(3); // re-set moves to the front without double counting
    expect([...lru.keysLruFirst()]).toEqual([4, 3]);
    expect(lru.usedBytes).toBe(80);
    expect(lru.items).toBe(2);
  });

  test("matches a naive list-based LRU on random operations", () => {
    const prng = new Prng(5);
    const keys = 300;
    const costs = new Int32Array(keys);
    for (let k = 0; k < keys; k++) costs[k] = 1 + (prng.nextU32() % 200);
    const budget = 5000;
    const lru = new IdealLru(costs, budget);
    let naive: number[] = []; // most recent last
    for (let op = 0; op < 20_000; op++) {
      const k = prng.nextU32() % keys;
      const present = naive.includes(k);
      if (prng.next() < 0.6) {
        expect(lru.get(k)).toBe(present);
        if (present) naive = [...naive.filter((x) => x !== k), k];
      } else {
        lru.set(k);
        naive = naive.filter((x) => x !== k);
        let used = naive.reduce((sum, x) => sum + costs[x], 0);
        while (used + costs[k] > budget) used -= costs[naive.shift()!];
        naive.push(k);
      }
    }
    expect([...lru.keysLruFirst()]).toEqual(naive);
    expect(lru.usedBytes).toBe(naive.reduce((sum, x) => sum + costs[x], 0));
  });

  test("item costs: payload is key + value; cacheismo adds a 56-byte header and rounds up to 32", () => {
    expect(payloadCost(10, 100)).toBe(110);
    expect(cacheismoItemCost(10, 92)).toBe(160);
    expect(cacheismoItemCost(10, 94)).toBe(160);
    expect(cacheismoItemCost(10, 95)).toBe(192);
  });

  test("replay: a key that misses is set once, after its batch; then it hits", async () => {
    const trace = small("W3", 2);
    const ks = trace.keyspace;
    const batch = 50;
    const lru = new IdealLru(new Int32Array(ks.count).fill(1), ks.count); // everything fits
    const result = await replay(trace, new ModelCache(lru), batch, Date.now() + 10_000);
    // With no evictions, a key misses exactly at its occurrences in the batch where it first appears.
    const firstBatch = new Int32Array(ks.count).fill(-1);
    let misses = 0;
    let distinct = 0;
    for (let i = 0; i < trace.requests.length; i++) {
      const k = trace.requests[i];
      const b = Math.floor(i / batch);
      if (firstBatch[k] === -1) {
        firstBatch[k] = b;
        distinct++;
      }
      if (firstBatch[k] === b && i >= trace.measureFrom) misses++;
    }
    expect(result.measured.requests).toBe(trace.requests.length / 2);
    expect(result.measured.requests - result.measured.hits).toBe(misses);
    expect(result.sets).toBe(distinct);
    expect(lru.items).toBe(distinct);
    expect(result.everSet.reduce((a, b) => a + b, 0)).toBe(distinct);
  });
});

describe("TTL workloads and the expiry-aware ideal LRU", () => {
  test("an expired key's memory is free at once: storing after its expiry evicts no live key", () => {
    const lru = new IdealLru(Int32Array.of(30, 30, 30, 30), 100, Int32Array.of(2, 0, 0, 0));
    lru.set(0, 0.5); // expires when the whole-second clock reaches 2
    lru.set(1, 0.5);
    lru.set(2, 1);
    lru.expire(1.9);
    expect(lru.get(0)).toBe(true);
    lru.expire(2.0);
    expect(lru.get(0)).toBe(false);
    lru.set(3, 2.0);
    expect([...lru.keysLruFirst()]).toEqual([1, 2, 3]);
    expect(lru.evictions).toBe(0);
  });

  test("setting a key again restarts its TTL", () => {
    const lru = new IdealLru(Int32Array.of(10), 100, Int32Array.of(2));
    lru.set(0, 0);
    lru.set(0, 1.5);
    lru.expire(2.5);
    expect(lru.get(0)).toBe(true);
    lru.expire(3);
    expect(lru.get(0)).toBe(false);
    expect(lru.usedBytes).toBe(0);
  });

  test("a TTL workload gives its fraction of the keys a TTL in its range; the others have none", () => {
    const ttls = (name: string): Int32Array => buildTrace(findWorkload(name), { keys: 4000, requests: 100, alpha: 1, seed: 1 }).keyspace.ttls;
    const spread = ttls("T2");
    const withTtl = spread.filter((t) => t !== 0);
    expect(withTtl.length / spread.length).toBeGreaterThan(0.45);
    expect(withTtl.length / spread.length).toBeLessThan(0.55);
    expect(Math.min(...withTtl)).toBe(1);
    expect(Math.max(...withTtl)).toBeGreaterThan(40);
    expect(Math.max(...withTtl)).toBeLessThanOrEqual(60);
    expect(new Set(ttls("T1"))).toEqual(new Set([0, 2]));
    expect(ttls("T0").every((t) => t === 0)).toBe(true);
  });

  test("a paced replay tells a model each batch's due time instead of waiting for it", async () => {
    const trace = buildTrace(findWorkload("T1"), { keys: 100, requests: 1000, alpha: 1, seed: 1 });
    const due: number[] = [];
    const cache = { waitsForTime: false, exchange: (_s: Int32Array, _g: Int32Array, _h: Uint8Array, now: number) => void due.push(now) };
    const started = Date.now();
    await replay(trace, cache, 100, Date.now() + 10_000, 50); // 20 s of requests at 50/s
    expect(Date.now() - started).toBeLessThan(5000);
    expect(due.slice(0, 3)).toEqual([0, 2, 4]);
    expect(due.at(-1)).toBe(20);
  });
});

describe("priority model (bench/hitrate/priority-model.ts)", () => {
  // Three keys whose items cost 96 bytes each (56-byte header + 8-byte key + 32-byte value): a
  // 200-byte budget holds two.
  const sizes = new Int32Array([32, 32, 32]);
  const noTtls = new Int32Array(3);
  const cache = (value: PriorityValue, rates = new Float64Array(3), ttls = noTtls, horizon?: number): PriorityCache =>
    new PriorityCache(200, 8, sizes, ttls, value, rates, horizon);
  const hitsOf = (c: PriorityCache, gets: number[], now: number, sets: number[] = []): number[] => {
    const hits = new Uint8Array(gets.length);
    c.exchange(Int32Array.from(sets), Int32Array.from(gets), hits, now);
    return [...hits];
  };

  test("gdsf evicts the item with the fewest hits, not the oldest", () => {
    const c = cache("gdsf");
    hitsOf(c, [], 0, [0, 1]);
    expect(hitsOf(c, [0, 0], 0)).toEqual([1, 1]);
    hitsOf(c, [], 0, [2]); // evicts 1: stored once, never hit
    expect(hitsOf(c, [0, 1, 2], 0)).toEqual([1, 0, 1]);
  });

  test("popularity evicts the key requested least often, whatever the hits so far", () => {
    const c = cache("popularity", Float64Array.from([1, 5, 3]));
    hitsOf(c, [], 0, [0, 1]);
    expect(hitsOf(c, [0, 0, 0], 0)).toEqual([1, 1, 1]);
    hitsOf(c, [], 0, [2]); // evicts 0: the least popular, though the most hit
    expect(hitsOf(c, [0, 1, 2], 0)).toEqual([0, 1, 1]);
  });

  test("an item expires at the whole second of its store plus its TTL, and its memory is free then", () => {
    const ttls = Int32Array.from([2, 0, 0]);
    const c = cache("gdsf", new Float64Array(3), ttls);
    hitsOf(c, [], 0.9, [0, 1]);
    expect(hitsOf(c, [0], 1.99)).toEqual([1]);
    expect(hitsOf(c, [0], 2.0)).toEqual([0]); // floor(0.9) + 2
    hitsOf(c, [], 2.0, [2]); // fits without evicting 1
    expect(hitsOf(c, [1, 2], 2.0)).toEqual([1, 1]);
  });

  test("popularity-ttl weighs the seconds left: a popular key about to expire goes before a less popular one without TTL", () => {
    const ttls = Int32Array.from([1, 0, 0]);
    const c = cache("popularity-ttl", Float64Array.from([10, 2, 3]), ttls, 20);
    hitsOf(c, [], 0.5, [0, 1]); // 0's value 10 × 1 s left; 1's 2 × 20 s
    hitsOf(c, [], 0.5, [2]);
    expect(hitsOf(c, [0, 1, 2], 0.5)).toEqual([0, 1, 1]);
  });

  test("gdsf-ttl weighs its counted hits by the share of the horizon left", () => {
    const ttls = Int32Array.from([1, 0, 0]);
    const c = cache("gdsf-ttl", new Float64Array(3), ttls, 10);
    hitsOf(c, [], 0.5, [0, 1]);
    expect(hitsOf(c, [0, 0, 0], 0.5)).toEqual([1, 1, 1]); // 4 hits × 0.5 s / 10 s: 0.2, below 1's 1 × 1
    hitsOf(c, [], 0.5, [2]);
    expect(hitsOf(c, [0, 1, 2], 0.5)).toEqual([0, 1, 1]);
  });
});
