/**
 * Several threads serving one port: the main thread starts one Worker per thread, each with its own
 * CacheServer over the same ServerMemory (store, counters, connection count) and listening with
 * reusePort, so every connection is served start to finish by the thread that accepted it. The
 * main thread keeps start-up, signals, reloads, logs and /metrics, and tells the workers what to
 * do; what they must agree on is in the shared memory, never in messages.
 */
import { availableParallelism } from "node:os";
import type { Config } from "./config.ts";
import { LatencyHistograms } from "./metrics.ts";
import { createServerMemory, type ServerMemory } from "./server.ts";
import { CounterTable, type StatsSource } from "./stats.ts";
import { Store } from "./store/store.ts";

/** The threads a --threads value asks for: 0 is the cores this process may use, at most 4. */
export function threadCount(requested: number): number {
  return requested > 0 ? requested : Math.min(4, availableParallelism());
}

export type ToWorker =
  | { type: "start"; config: Config; memory: ServerMemory; thread: number; threads: number; latency: SharedArrayBuffer | null }
  | { type: "reload"; config: Config }
  | { type: "drain"; timeoutMs: number };

export type FromWorker =
  | { type: "listening"; port: number }
  /** settings: the server could not be built from the config (as opposed to not listening). */
  | { type: "failed"; error: string; settings: boolean }
  | { type: "log"; level: string; msg: string }
  | { type: "reloaded"; errors: string[] }
  | { type: "drained" }
  | { type: "shutdown" };

/** A worker could not start; `settings` when the config was the reason (exit 2, as for a bad flag). */
export class WorkerStartError extends Error {
  constructor(
    message: string,
    readonly settings: boolean,
  ) {
    super(message);
  }
}

export interface PoolEvents {
  log(level: string, msg: string): void;
  /** A worker ran the `shutdown` command (with --enable-shutdown). */
  shutdown(): void;
  /** A worker died: the process cannot serve its share of the port any more. */
  crashed(thread: number, reason: string): void;
}

export class WorkerPool implements StatsSource {
  readonly store: Store;
  readonly counterTable: CounterTable;
  readonly startedAt: number;
  readonly extraStats: (() => [string, string | number][])[] = [];
  private readonly workers: Worker[] = [];
  private readonly histograms: LatencyHistograms[] = [];
  private readonly memory: ServerMemory;
  private stopping = false;
  port = 0;

  /** The shared memory and the stats over it; start() starts the threads. */
  constructor(
    readonly config: Config,
    readonly threads: number,
    private readonly events: PoolEvents,
  ) {
    const memory = createServerMemory(config, threads);
    this.memory = memory;
    this.store = new Store({ memory: memory.store, memoryBytes: 0, maxItemBytes: config.maxItemSizeBytes });
    this.counterTable = new CounterTable(memory.counters);
    this.startedAt = this.store.clock.now;
  }

  /**
   * Starts the workers on config's port (the first picks it when it is 0) and resolves once all
   * listen. With `timed`, each worker times commands into its own histograms (latency()).
   */
  async start(timed: boolean): Promise<void> {
    try {
      this.port = await this.startWorker(0, this.config.port, timed);
      await Promise.all(Array.from({ length: this.threads - 1 }, (_, i) => this.startWorker(i + 1, this.port, timed)));
    } catch (e) {
      this.terminate();
      throw e;
    }
  }

  /** Every worker's command latencies, summed as of now. */
  latency(): LatencyHistograms {
    return LatencyHistograms.sum(this.histograms);
  }

  /** SIGHUP: the running config (live options applied) to every worker, and their scripts reloaded. */
  async reload(config: Config): Promise<string[]> {
    const replies = await Promise.all(this.workers.map((w) => this.ask(w, { type: "reload", config }, "reloaded")));
    // Every worker loads the same files: report their errors once.
    return [...new Set(replies.flatMap((r) => (r.type === "reloaded" ? r.errors : [])))];
  }

  /** Graceful stop of every worker (each drains its connections), then the threads end. */
  async drain(timeoutMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers.map((w) => this.ask(w, { type: "drain", timeoutMs }, "drained")));
    this.terminate();
  }

  private terminate(): void {
    this.stopping = true;
    for (const w of this.workers) w.terminate();
  }

  private startWorker(thread: number, port: number, timed: boolean): Promise<number> {
    const worker = new Worker(new URL("./worker.ts", import.meta.url));
    this.workers.push(worker);
    let latency: SharedArrayBuffer | null = null;
    if (timed) {
      const histograms = new LatencyHistograms();
      this.histograms.push(histograms);
      latency = histograms.buffer;
    }
    worker.addEventListener("message", (event: MessageEvent<FromWorker>) => {
      const msg = event.data;
      if (msg.type === "log") this.events.log(msg.level, msg.msg);
      else if (msg.type === "shutdown") this.events.shutdown();
    });
    worker.addEventListener("error", (event) => {
      if (!this.stopping) this.events.crashed(thread, event.message);
    });
    worker.addEventListener("close", () => {
      if (!this.stopping) this.events.crashed(thread, "the thread exited");
    });
    const config = { ...this.config, port };
    return this.ask(worker, { type: "start", config, memory: this.memory, thread, threads: this.threads, latency }, "listening").then((reply) => {
      if (reply.type === "failed") throw new WorkerStartError(reply.error, reply.settings);
      if (reply.type !== "listening") throw new WorkerStartError(`worker ${thread} did not start`, false);
      return reply.port;
    });
  }

  /** Sends msg and resolves with the worker's first reply of type `answer` (or "failed"). */
  private ask(worker: Worker, msg: ToWorker, answer: FromWorker["type"]): Promise<FromWorker> {
    return new Promise((resolve) => {
      const onMessage = (event: MessageEvent<FromWorker>): void => {
        if (event.data.type !== answer && event.data.type !== "failed") return;
        worker.removeEventListener("message", onMessage);
        resolve(event.data);
      };
      worker.addEventListener("message", onMessage);
      worker.postMessage(msg);
    });
  }
}
