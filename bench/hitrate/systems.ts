/** Runs one trace against one system (a model or a live server) and gathers its end state. */
import { stop } from "../lib/proc.ts";
import { PipelinedClient, type ReplyProblems } from "./client.ts";
import { IdealLru, cacheismoItemCost, payloadCost } from "./lru-model.ts";
import { ModelCache, type ReplayResult, replay } from "./replay.ts";
import { type RunningServer, type ServerMemory, type ServerSpec, serverMemory, statusBytes, startServer } from "./servers.ts";
import type { Trace } from "./workloads.ts";

/** A single exchange (one batch) that takes longer than this means the server is stuck. */
const EXCHANGE_TIMEOUT_MS = 30_000;

export interface RunOptions {
  readonly batch: number;
  /** Requests per second for a paced replay; 0 replays as fast as the system answers. */
  readonly rate: number;
  readonly runTimeoutMs: number;
  readonly workDir: string;
  readonly repoRoot: string;
}

export interface SystemResult {
  readonly system: string;
  readonly kind: "model" | "server";
  readonly replay: ReplayResult | undefined;
  /** Items held at the end and their key + value bytes (model state, or a final scan of a server). */
  readonly itemsHeld: number | undefined;
  readonly heldPayloadBytes: number | undefined;
  /** Servers: stats and RSS at the end. Models: bytes = cost held, limitMaxbytes = budget. */
  readonly memory: ServerMemory | undefined;
  /** Servers: RSS once accepting, before any request (the runtime's own share of the end RSS). */
  readonly rssAtStartBytes: number | undefined;
  readonly problems: ReplyProblems | undefined;
  readonly error: string | undefined;
  readonly seconds: number;
}

export type ModelCost = "payload" | "cacheismo-item";

export const MODEL_NAMES: Record<ModelCost, string> = {
  payload: "ideal LRU, payload bytes",
  "cacheismo-item": "ideal LRU, cacheismo item cost",
};

export async function runModel(trace: Trace, cost: ModelCost, budgetBytes: number, options: RunOptions): Promise<SystemResult> {
  const started = performance.now();
  const ks = trace.keyspace;
  const costOf = cost === "payload" ? payloadCost : cacheismoItemCost;
  const costs = new Int32Array(ks.count);
  for (let k = 0; k < ks.count; k++) costs[k] = costOf(ks.keyBytes, ks.sizes[k]);
  const lru = new IdealLru(costs, budgetBytes, ks.ttls);
  const result = await replay(trace, new ModelCache(lru), options.batch, Date.now() + options.runTimeoutMs, options.rate);
  let heldPayloadBytes = 0;
  for (const k of lru.keysLruFirst()) heldPayloadBytes += ks.keyBytes + ks.sizes[k];
  return {
    system: MODEL_NAMES[cost],
    kind: "model",
    replay: result,
    itemsHeld: lru.items,
    heldPayloadBytes,
    memory: { rssBytes: undefined, peakRssBytes: undefined, bytes: lru.usedBytes, limitMaxbytes: budgetBytes, currItems: lru.items, evictions: lru.evictions },
    rssAtStartBytes: undefined,
    problems: undefined,
    error: undefined,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Fresh server, replay, end-of-run stats and RSS, then a scan of every key ever set; the server is always stopped. */
export async function runServer(trace: Trace, spec: ServerSpec, options: RunOptions): Promise<SystemResult> {
  const started = performance.now();
  const deadline = Date.now() + options.runTimeoutMs;
  let server: RunningServer | undefined;
  let client: PipelinedClient | undefined;
  let result: ReplayResult | undefined;
  let memory: ServerMemory | undefined;
  let held: { items: number; payloadBytes: number } | undefined;
  let rssAtStartBytes: number | undefined;
  let error: string | undefined;
  try {
    server = await startServer(spec, options.workDir, options.repoRoot, trace.spec.name);
    rssAtStartBytes = statusBytes(server.proc.pid, "VmRSS");
    client = await PipelinedClient.connect(server.port, trace.keyspace, EXCHANGE_TIMEOUT_MS);
    result = await replay(trace, client, options.batch, deadline, options.rate);
    memory = await serverMemory(server); // before the scan, which could grow buffers
    held = await scanHeld(client, trace, result.everSet, options.batch, deadline);
  } catch (e) {
    error = (e as Error).message;
    if (server) await Promise.race([server.proc.exited, Bun.sleep(500)]); // did it crash?
    if (server && server.proc.exitCode !== null) error += ` (server exited with ${server.proc.exitCode}; log ${server.logPath})`;
    if (server && server.proc.signalCode !== null) error += ` (server killed by ${server.proc.signalCode}; log ${server.logPath})`;
  } finally {
    client?.close();
    if (server) await stop(server.proc);
  }
  return {
    system: spec.name,
    kind: "server",
    replay: result,
    itemsHeld: held?.items,
    heldPayloadBytes: held?.payloadBytes,
    memory,
    rssAtStartBytes,
    problems: client?.problems,
    error,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Gets every key that was ever stored (hits are verified like any other) and totals what is still held. */
async function scanHeld(
  client: PipelinedClient,
  trace: Trace,
  everSet: Uint8Array,
  batch: number,
  deadlineMs: number,
): Promise<{ items: number; payloadBytes: number }> {
  const ks = trace.keyspace;
  const keys: number[] = [];
  for (let k = 0; k < everSet.length; k++) if (everSet[k] === 1) keys.push(k);
  const all = Int32Array.from(keys);
  const hits = new Uint8Array(batch);
  const none = new Int32Array(0);
  let items = 0;
  let payloadBytes = 0;
  for (let start = 0; start < all.length; start += batch) {
    if (Date.now() > deadlineMs) throw new Error(`final scan passed the run deadline at key ${start} of ${all.length}`);
    const gets = all.subarray(start, Math.min(start + batch, all.length));
    await client.exchange(none, gets, hits);
    for (let i = 0; i < gets.length; i++) {
      if (hits[i] === 0) continue;
      items++;
      payloadBytes += ks.keyBytes + ks.sizes[gets[i]];
    }
  }
  return { items, payloadBytes };
}
