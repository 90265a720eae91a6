// In-process store speed: the hot store operations without sockets, so that a change to the
// store's memory layout or locking shows in ns per operation rather than in network noise.
//
//   bun run bench/store-ops.ts [--ops 2000000] [--rounds 5]
//
// Rows: get hits of 32 B values over 100K keys; over 1K hot keys under the store lock as the
// protocol takes it, and lock-free as the protocol reads hot items (Store.peek between the
// lock's readBegin and readValid); 9:1 get:set; sets of 4 KB values under eviction (-m 64). The
// locked row is how long one read holds the lock. Last, the expiry crawler's cost: one slice as
// an allocation runs it before evicting (16 items / 512 buckets) and one timer slice (1,024 items /
// 16,384 buckets), over 100K items of which half carry an expired TTL. Best round of each, in ns of this thread's CPU time per
// operation (CPU time, so that other processes on the machine do not inflate it).
import { parseArgs } from "node:util";
import { CRAWL_BUCKETS_PER_ALLOCATION, CRAWL_ITEMS_PER_ALLOCATION, PEEK_NEEDS_LOCK, Store, StoreMode } from "../src/store/store.ts";

const { values: args } = parseArgs({ options: { ops: { type: "string", default: "2000000" }, rounds: { type: "string", default: "5" } } });
const OPS = Number(args.ops);
const ROUNDS = Number(args.rounds);
const KEYS = 100_000;
const HOT = 1_000;

const keys: Uint8Array[] = Array.from({ length: KEYS }, (_, i) => new TextEncoder().encode(`key:${i.toString().padStart(8, "0")}`));
const small = new Uint8Array(32).fill(120);
const large = new Uint8Array(4096).fill(121);
const out = new Uint8Array(8192);

function fresh(): Store {
  return new Store({ memoryBytes: 64 * 1024 * 1024, maxItemBytes: 1024 * 1024 });
}

function set(store: Store, k: Uint8Array, v: Uint8Array): void {
  store.store(StoreMode.Set, k, 0, k.length, 0, 0, v, 0, v.length, 0);
}

function getHits(store: Store): void {
  for (let i = 0; i < OPS; i++) {
    const k = keys[(i * 7919) % KEYS];
    const it = store.get(k, 0, k.length);
    if (it !== 0) store.copyValueTo(it, out, 0);
  }
}

function getHitsLocked(store: Store): void {
  const lock = store.lock;
  for (let i = 0; i < OPS; i++) {
    const k = keys[(i * 7919) % HOT];
    lock.lock();
    const it = store.get(k, 0, k.length);
    if (it !== 0) store.copyValueTo(it, out, 0);
    lock.unlock();
  }
}

function getHitsLockFree(store: Store): void {
  const lock = store.lock;
  let locked = 0;
  for (let i = 0; i < OPS; i++) {
    const k = keys[(i * 7919) % HOT];
    const token = lock.readBegin();
    const it = store.peek(k, 0, k.length);
    if (it > 0) store.copyValueTo(it, out, 0);
    if (it === PEEK_NEEDS_LOCK || !lock.readValid(token)) {
      locked++;
      lock.hold(() => store.get(k, 0, k.length));
    }
  }
  lockedShare = locked / OPS;
}

let lockedShare = 0;

function mixed(store: Store): void {
  for (let i = 0; i < OPS; i++) {
    const k = keys[(i * 7919) % KEYS];
    if (i % 10 === 0) set(store, k, small);
    else {
      const it = store.get(k, 0, k.length);
      if (it !== 0) store.copyValueTo(it, out, 0);
    }
  }
}

function largeSets(store: Store): void {
  for (let i = 0; i < OPS / 4; i++) set(store, keys[(i * 7919) % KEYS], large);
}

const rows: [string, (s: Store) => void, number][] = [
  ["get hit, 32 B", getHits, OPS],
  ["get hit, 32 B, hot, locked", getHitsLocked, OPS],
  ["get hit, 32 B, hot, lock-free", getHitsLockFree, OPS],
  ["9:1 get:set, 32 B", mixed, OPS],
  ["set 4 KB under eviction", largeSets, OPS / 4],
];
/** CPU time of `slices` crawler slices over a store where half the items have expired. */
function crawlSlices(maxItems: number, maxBuckets: number, slices: number): { ns: number; freedPerSlice: number } {
  const store = fresh();
  for (const [i, k] of keys.entries()) store.store(StoreMode.Set, k, 0, k.length, 0, i % 2 === 0 ? 10 : 0, small, 0, small.length, 0);
  store.clock.now += 11;
  let freed = 0;
  const t0 = process.threadCpuUsage();
  for (let i = 0; i < slices; i++) freed += store.crawlExpired(maxItems, maxBuckets);
  const t1 = process.threadCpuUsage(t0);
  return { ns: ((t1.user + t1.system) * 1e3) / slices, freedPerSlice: freed / slices };
}

for (const [name, run, ops] of rows) {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const store = fresh();
    for (const k of keys) set(store, k, small);
    // Every item read once: the first hit of an item writes (fetched), later ones need not.
    getHits(store);
    const t0 = process.threadCpuUsage();
    run(store);
    const t1 = process.threadCpuUsage(t0);
    best = Math.min(best, ((t1.user + t1.system) * 1e3) / ops);
  }
  const note = run === getHitsLockFree ? ` (${(lockedShare * 100).toFixed(1)} % fell back to the lock)` : "";
  console.log(`${name.padEnd(30)} ${best.toFixed(1).padStart(7)} ns/op${note}`);
}
for (const [name, items, buckets, slices] of [
  ["crawl slice at allocation", CRAWL_ITEMS_PER_ALLOCATION, CRAWL_BUCKETS_PER_ALLOCATION, 2000],
  ["crawl slice on the timer", 1024, 16384, 40],
] as const) {
  const { ns, freedPerSlice } = crawlSlices(items, buckets, slices);
  console.log(`${name.padEnd(30)} ${(ns / 1000).toFixed(1).padStart(7)} µs/slice (${freedPerSlice.toFixed(1)} items freed per slice)`);
}
