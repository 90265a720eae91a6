/**
 * The command-line options of the offline replays of the TTL workloads (bench/ttl-bound.ts,
 * bench/policy-replay.ts), and the traces they name: the same defaults as bench/hitrate.ts's TTL
 * runs, so that their figures compare with a server run's.
 */
import { buildTrace, findWorkload, type Trace } from "./workloads.ts";

const ZIPF_ALPHA = 1.0; // as bench/hitrate.ts, for workloads that do not set their own

/** parseArgs options; a script adds its own beside them. */
export const OFFLINE_REPLAY_OPTIONS = {
  workloads: { type: "string", default: "T0,T1,T2" },
  "memory-mb": { type: "string", default: "64" },
  requests: { type: "string", default: "600000" },
  keys: { type: "string", default: "200000" },
  rate: { type: "string", default: "25000" },
  seed: { type: "string", default: "1" },
} as const;

export interface OfflineReplayValues {
  workloads: string;
  requests: string;
  keys: string;
  seed: string;
}

/** The trace of each --workloads name, built when the loop reaches it. */
export function* offlineTraces(values: OfflineReplayValues): Generator<{ name: string; trace: Trace }> {
  for (const name of values.workloads.split(",")) {
    yield { name, trace: buildTrace(findWorkload(name), { keys: Number(values.keys), requests: Number(values.requests), alpha: ZIPF_ALPHA, seed: Number(values.seed) }) };
  }
}
