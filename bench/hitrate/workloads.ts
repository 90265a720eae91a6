/**
 * The workloads: Zipf-popular keys with fixed, log-uniformly drawn value sizes. A workload has
 * one or more phases of equal length; each phase has its own key namespace (keys "W2a:…" then
 * "W2b:…"), so a phase change replaces the whole working set and its size mix.
 */
import { Keyspace } from "./keyspace.ts";
import { Prng } from "./prng.ts";
import { Zipf } from "./zipf.ts";

export interface SizeRange {
  /** Inclusive bounds in bytes; sizes are log-uniform between them. */
  readonly min: number;
  readonly max: number;
}

/** A fraction of the keys (fixed by key id) stored with a TTL drawn log-uniformly from [min, max] seconds. */
export interface TtlSpec {
  readonly fraction: number;
  readonly minSeconds: number;
  readonly maxSeconds: number;
}

export interface WorkloadSpec {
  readonly name: string;
  readonly description: string;
  /** Size range of each phase, in order; phases split the requests evenly. */
  readonly phases: readonly SizeRange[];
  /** Zipf alpha of this workload, instead of the bench's. */
  readonly alpha?: number;
  /** Keys with TTLs: replay such a workload paced (--rate), so that TTLs mean the same to every system. */
  readonly ttl?: TtlSpec;
}

const KB = 1024;
const SMALL: SizeRange = { min: 64, max: KB };
const LARGE: SizeRange = { min: 4 * KB, max: 64 * KB };
const MIXED: SizeRange = { min: 100, max: 10 * KB };

export const WORKLOADS: readonly WorkloadSpec[] = [
  { name: "W1", description: "sizes log-uniform 100 B–100 KB", phases: [{ min: 100, max: 100 * KB }] },
  { name: "W2", description: "64 B–1 KB, then (new keys) 4–64 KB", phases: [SMALL, LARGE] },
  { name: "W3", description: "small values, 16–256 B", phases: [{ min: 16, max: 256 }] },
  { name: "W4", description: "4–64 KB, then (new keys) 64 B–1 KB", phases: [LARGE, SMALL] },
  // Issue 19's workloads: the same keys and sizes without TTLs, with a short TTL on half of them,
  // and with TTLs spread from 1 s to 60 s.
  { name: "T0", description: "100 B–10 KB, Zipf 0.9, no TTLs", phases: [MIXED], alpha: 0.9 },
  { name: "T1", description: "100 B–10 KB, Zipf 0.9, half the keys with a 2 s TTL", phases: [MIXED], alpha: 0.9, ttl: { fraction: 0.5, minSeconds: 2, maxSeconds: 2 } },
  { name: "T2", description: "100 B–10 KB, Zipf 0.9, half the keys with TTLs of 1–60 s", phases: [MIXED], alpha: 0.9, ttl: { fraction: 0.5, minSeconds: 1, maxSeconds: 60 } },
];

/** The workloads a run takes unless told: the TTL ones need --rate. */
export const DEFAULT_WORKLOADS: readonly WorkloadSpec[] = WORKLOADS.filter((w) => w.alpha === undefined);

export interface TraceOptions {
  readonly keys: number;
  readonly requests: number;
  readonly alpha: number;
  readonly seed: number;
}

export interface Trace {
  readonly spec: WorkloadSpec;
  readonly keyspace: Keyspace;
  /** Key (index into keyspace) of each request. */
  readonly requests: Int32Array;
  /** Hit ratios are measured over requests[measureFrom..]. */
  readonly measureFrom: number;
}

export function findWorkload(name: string): WorkloadSpec {
  const spec = WORKLOADS.find((w) => w.name === name);
  if (!spec) throw new Error(`unknown workload ${JSON.stringify(name)} (known: ${WORKLOADS.map((w) => w.name).join(", ")})`);
  return spec;
}

function logUniform(prng: Prng, range: SizeRange): number {
  const lo = Math.log(range.min);
  const hi = Math.log(range.max + 1);
  return Math.min(range.max, Math.floor(Math.exp(lo + prng.next() * (hi - lo))));
}

/** Builds the trace of a workload; the same options always give the same trace. */
export function buildTrace(spec: WorkloadSpec, options: TraceOptions): Trace {
  const { keys, requests: n } = options;
  const phases = spec.phases.length;
  const seed = (options.seed ^ Math.imul(nameHash(spec.name), 0x9e3779b1)) >>> 0;
  const sizePrng = new Prng(seed);
  const requestPrng = new Prng(seed + 1);
  const ttlPrng = new Prng(seed + 3);

  const sizes = new Int32Array(keys * phases);
  for (let p = 0; p < phases; p++) {
    for (let id = 0; id < keys; id++) sizes[p * keys + id] = logUniform(sizePrng, spec.phases[p]);
  }
  const width = String(keys - 1).length;
  const names = (g: number): string =>
    `${spec.name}${String.fromCharCode(97 + Math.floor(g / keys))}:${String(g % keys).padStart(width, "0")}`;
  const ttls = new Int32Array(keys * phases);
  const ttl = spec.ttl;
  if (ttl) {
    for (let g = 0; g < ttls.length; g++) {
      if (ttlPrng.next() < ttl.fraction) ttls[g] = logUniform(ttlPrng, { min: ttl.minSeconds, max: ttl.maxSeconds });
    }
  }
  const keyspace = new Keyspace(names, sizes, seed + 2, ttls);

  // Rank r of phase p is key p * keys + r: keys are fixed width, so which id is popular does not matter.
  const zipf = new Zipf(keys, spec.alpha ?? options.alpha);
  const requests = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const phase = Math.floor((i * phases) / n);
    requests[i] = phase * keys + zipf.sample(requestPrng);
  }
  return { spec, keyspace, requests, measureFrom: Math.floor(n / 2) };
}

function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
