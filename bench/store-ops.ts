// In-process store speed: the hot store operations without sockets, so that a change to the
// store's memory layout or locking shows in ns per operation rather than in network noise.
//
//   bun run bench/store-ops.ts [--ops 2000000] [--rounds 5]
//
// Rows: get hits of 32 B values over 100K keys; 9:1 get:set; sets of 4 KB values under eviction
// (-m 64). Best round of each, in ns per operation.
import { parseArgs } from "node:util";
import { Store, StoreMode } from "../src/store/store.ts";

const { values: args } = parseArgs({ options: { ops: { type: "string", default: "2000000" }, rounds: { type: "string", default: "5" } } });
const OPS = Number(args.ops);
const ROUNDS = Number(args.rounds);
const KEYS = 100_000;

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
  ["9:1 get:set, 32 B", mixed, OPS],
  ["set 4 KB under eviction", largeSets, OPS / 4],
];
for (const [name, run, ops] of rows) {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const store = fresh();
    for (const k of keys) set(store, k, small);
    const t0 = performance.now();
    run(store);
    best = Math.min(best, ((performance.now() - t0) * 1e6) / ops);
  }
  console.log(`${name.padEnd(26)} ${best.toFixed(1).padStart(7)} ns/op`);
}
