// How much of GDSF's lead TTLs take away whatever the policy knows: the TTL workloads of
// bench/hitrate.ts replayed (same traces, same pace, same look-aside sequence) against model caches
// that evict by priority (bench/hitrate/priority-model.ts): GDSF counting hits as cacheismo does,
// the same weighing the seconds an item has left before it expires, and two clairvoyant policies
// that know every key's request rate in advance, one of them weighing the seconds left too (the
// weighed ones: best of --horizons). Seconds per run; no server.
//
//   bun run bench/ttl-bound.ts [--workloads T0,T1,T2] [--horizons 1,2,5,20,100] [--memory-mb 64]
//                              [--requests 600000] [--keys 200000] [--rate 25000] [--seed 1]
//
// Compare each column's drop from T0 with memcached's in a bench/hitrate.ts run of the same
// workloads: a policy keeps its lead over memcached only if it drops no more than memcached does.
import { parseArgs } from "node:util";
import { PriorityCache, type PriorityValue } from "./hitrate/priority-model.ts";
import { replay } from "./hitrate/replay.ts";
import { OFFLINE_REPLAY_OPTIONS, offlineTraces } from "./hitrate/offline-options.ts";
import type { Trace } from "./hitrate/workloads.ts";

const BATCH = 100;

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    ...OFFLINE_REPLAY_OPTIONS,
    horizons: { type: "string", default: "1,2,5,20,100" },
  },
});
const pace = Number(values.rate);
const budget = Number(values["memory-mb"]) * 1024 * 1024;
const horizons = values.horizons.split(",").map(Number);

/** Each key's requests per second over the whole trace. */
function requestRates(trace: Trace): Float64Array {
  const rates = new Float64Array(trace.keyspace.count);
  for (const g of trace.requests) rates[g] += pace / trace.requests.length;
  return rates;
}

const percent = (x: number): string => `${x.toFixed(2)} %`;

async function hitRatio(trace: Trace, value: PriorityValue, rates: Float64Array, horizon?: number): Promise<number> {
  const { keyspace } = trace;
  const cache = new PriorityCache(budget, keyspace.keyBytes, keyspace.sizes, keyspace.ttls, value, rates, horizon);
  const { measured } = await replay(trace, cache, BATCH, Date.now() + 600_000, pace);
  return (100 * measured.hits) / measured.requests;
}

/** The best hit ratio of a weighed policy over the horizons, and the horizon that gave it. */
async function bestHorizon(trace: Trace, value: PriorityValue, rates: Float64Array): Promise<string> {
  let best = { ratio: 0, horizon: 0 };
  for (const horizon of horizons) {
    const ratio = await hitRatio(trace, value, rates, horizon);
    if (ratio > best.ratio) best = { ratio, horizon };
  }
  return `${percent(best.ratio)} (${best.horizon} s)`;
}

console.log(`| workload | gdsf (hits counted) | gdsf × seconds left | popularity known | popularity known × seconds left |`);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const { name, trace } of offlineTraces(values)) {
  const rates = requestRates(trace);
  const gdsf = percent(await hitRatio(trace, "gdsf", rates));
  const gdsfTtl = await bestHorizon(trace, "gdsf-ttl", rates);
  const popularity = percent(await hitRatio(trace, "popularity", rates));
  const popularityTtl = await bestHorizon(trace, "popularity-ttl", rates);
  console.log(`| ${name} | ${gdsf} | ${gdsfTtl} | ${popularity} | ${popularityTtl} |`);
}
