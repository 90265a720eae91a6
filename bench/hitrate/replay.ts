/**
 * The look-aside replay: requests go out in batches of gets; the distinct keys that missed are
 * set (with their values) before the next batch's gets. A server sees exactly this sequence on
 * one pipelined connection and the model replays the same sequence, so their results compare
 * request for request and a run is deterministic for a seed.
 *
 * Paced (`rate` requests per second, for TTL workloads): batch i is due at i * batch / rate
 * seconds. A server is sent each batch no earlier than that, so TTLs meet every server at the same
 * moments; a model is told the due time instead of waiting for it.
 */
import type { IdealLru } from "./lru-model.ts";
import type { Trace } from "./workloads.ts";

export interface CacheUnderTest {
  /** True for a live server: a paced replay waits for each batch's due time before sending it. */
  readonly waitsForTime: boolean;
  /**
   * Stores every key of `sets`, then looks up `gets` in order: hits[i] = 1 when gets[i] hit.
   * `nowSeconds` is the batch's due time since the replay started (0 when not paced).
   */
  exchange(sets: Int32Array, gets: Int32Array, hits: Uint8Array, nowSeconds: number): Promise<void> | void;
}

export interface HitCounts {
  requests: number;
  hits: number;
  /** Value bytes requested, and value bytes served from the cache. */
  requestBytes: number;
  hitBytes: number;
}

export interface ReplayResult {
  /** Over the measured part of the trace only. */
  readonly measured: HitCounts;
  readonly sets: number;
  /** everSet[k] = 1 when key k was stored at least once: only those can be held at the end. */
  readonly everSet: Uint8Array;
}

export async function replay(trace: Trace, cache: CacheUnderTest, batch: number, deadlineMs: number, rate = 0): Promise<ReplayResult> {
  const startedMs = Date.now();
  const dueSeconds = (request: number): number => (rate > 0 ? request / rate : 0);
  const { requests, measureFrom, keyspace } = trace;
  const sizes = keyspace.sizes;
  const measured: HitCounts = { requests: 0, hits: 0, requestBytes: 0, hitBytes: 0 };
  const everSet = new Uint8Array(keyspace.count);
  // Batch in which a key was last queued for a set: a key that misses twice in a batch is set once.
  const queuedIn = new Int32Array(keyspace.count).fill(-1);
  const sets = new Int32Array(batch);
  const hits = new Uint8Array(batch);
  let setCount = 0;
  let totalSets = 0;
  for (let start = 0; start < requests.length; start += batch) {
    if (Date.now() > deadlineMs) throw new Error(`replay passed its deadline at request ${start} of ${requests.length}`);
    const gets = requests.subarray(start, Math.min(start + batch, requests.length));
    const due = dueSeconds(start);
    if (rate > 0 && cache.waitsForTime) {
      const waitMs = startedMs + due * 1000 - Date.now();
      if (waitMs > 0) await Bun.sleep(waitMs);
    }
    await cache.exchange(sets.subarray(0, setCount), gets, hits, due);
    totalSets += setCount;
    setCount = 0;
    for (let i = 0; i < gets.length; i++) {
      const key = gets[i];
      const hit = hits[i] === 1;
      if (start + i >= measureFrom) {
        measured.requests++;
        measured.requestBytes += sizes[key];
        if (hit) {
          measured.hits++;
          measured.hitBytes += sizes[key];
        }
      }
      if (!hit && queuedIn[key] !== start) {
        queuedIn[key] = start;
        sets[setCount++] = key;
        everSet[key] = 1;
      }
    }
  }
  await cache.exchange(sets.subarray(0, setCount), new Int32Array(0), hits, dueSeconds(requests.length));
  totalSets += setCount;
  return { measured, sets: totalSets, everSet };
}

/** The ideal LRU as a cache under test. */
export class ModelCache implements CacheUnderTest {
  readonly waitsForTime = false;
  constructor(readonly lru: IdealLru) {}

  exchange(sets: Int32Array, gets: Int32Array, hits: Uint8Array, nowSeconds: number): void {
    this.lru.expire(nowSeconds);
    for (let i = 0; i < sets.length; i++) this.lru.set(sets[i], nowSeconds);
    for (let i = 0; i < gets.length; i++) hits[i] = this.lru.get(gets[i]) ? 1 : 0;
  }
}
