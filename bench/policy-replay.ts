// The hit-ratio replay of bench/hitrate.ts run against the Store in this process, with a simulated
// clock: seconds where the server bench takes minutes, for trying eviction and expiry changes and
// for bounds no server run gives (an arena large enough to hold every key). Same traces, same
// look-aside sequence, same pace; the expiry crawler runs every 100 ms of simulated time as the
// server's timer runs it. Its figures match the server's within 0.1 pp (README, hit ratio with TTLs).
//
//   bun run bench/policy-replay.ts [--workloads T0,T1,T2] [--eviction lru|gdsf] [--memory-mb 64]
//                                   [--requests 600000] [--keys 200000] [--rate 25000] [--seed 1]
import { parseArgs } from "node:util";
import { Clock } from "../src/store/clock.ts";
import type { EvictionName } from "../src/store/policy.ts";
import { Store, StoreMode } from "../src/store/store.ts";
import type { Keyspace } from "./hitrate/keyspace.ts";
import { type CacheUnderTest, replay } from "./hitrate/replay.ts";
import { OFFLINE_REPLAY_OPTIONS, offlineTraces } from "./hitrate/offline-options.ts";

const CRAWL_EVERY_SECONDS = 0.1;
const CRAWL_ITEMS = 1024;
const CRAWL_BUCKETS = 16384;
const BATCH = 100;
/** Any start time: a TTL counts from the simulated now. */
const EPOCH_SECONDS = 1_800_000_000;

class InProcessStore implements CacheUnderTest {
  readonly waitsForTime = false;
  private readonly store: Store;
  private readonly values: Uint8Array;
  private nextCrawl = 0;

  constructor(
    private readonly keyspace: Keyspace,
    memoryMb: number,
    eviction: EvictionName,
  ) {
    const clock = new Clock();
    clock.now = EPOCH_SECONDS;
    this.store = new Store({ memoryBytes: memoryMb * 1024 * 1024, maxItemBytes: 1024 * 1024, eviction, clock });
    this.values = new Uint8Array(Math.max(...keyspace.sizes));
  }

  exchange(sets: Int32Array, gets: Int32Array, hits: Uint8Array, nowSeconds: number): void {
    const { store, keyspace } = this;
    store.clock.now = EPOCH_SECONDS + Math.floor(nowSeconds);
    for (; this.nextCrawl <= nowSeconds; this.nextCrawl += CRAWL_EVERY_SECONDS) store.crawlExpired(CRAWL_ITEMS, CRAWL_BUCKETS);
    for (const g of sets) {
      const key = keyspace.key(g);
      store.store(StoreMode.Set, key, 0, key.length, 0, keyspace.ttls[g], this.values, 0, keyspace.sizes[g], 0);
    }
    for (let i = 0; i < gets.length; i++) {
      const key = keyspace.key(gets[i]);
      hits[i] = store.get(key, 0, key.length) === 0 ? 0 : 1;
    }
  }
}

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    ...OFFLINE_REPLAY_OPTIONS,
    eviction: { type: "string", default: "gdsf" },
  },
});
const eviction = values.eviction as EvictionName;
if (eviction !== "lru" && eviction !== "gdsf") throw new Error("--eviction must be lru or gdsf");
const memoryMb = Number(values["memory-mb"]);
console.log(`| workload | ${eviction}, -m ${memoryMb}, in process |`);
console.log("| --- | ---: |");
for (const { name, trace } of offlineTraces(values)) {
  const result = await replay(trace, new InProcessStore(trace.keyspace, memoryMb, eviction), BATCH, Date.now() + 600_000, Number(values.rate));
  console.log(`| ${name} | ${((100 * result.measured.hits) / result.measured.requests).toFixed(2)} % |`);
}
