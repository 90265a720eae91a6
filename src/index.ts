/**
 * Programmatic API, for `bun test` fixtures and embedding:
 *   await using server = await startServer({ port: 0, memoryLimitMb: 16 });   // in this process
 *   await using server = await spawnServer({ memoryLimitMb: 16 });             // a child process
 * Both give the same handle; `port: 0` (the default here) picks a free port, so any number of
 * servers run side by side.
 */
import type { Subprocess } from "bun";
import { resolve } from "node:path";
import { type Config, defaultConfig, toArgs, withOptions } from "./config.ts";
import { type LogFormat, Logger } from "./log.ts";
import { restoreAtStart, saveAtStop } from "./memory-file/warm-restart.ts";
import { LatencyHistograms, type MetricsServer, startMetrics } from "./metrics.ts";
import { CacheServer } from "./server.ts";
import { type StatsSource, statsLines } from "./stats.ts";
import { WorkerPool } from "./worker-pool.ts";

/** Any option of the command line, by its camelCase key (see OPTIONS in config.ts). */
export type ServerOptions = Partial<Omit<Config, "help" | "version" | "configFile">>;

export interface RunningServer extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** `memcached://host:port` */
  readonly url: string;
  /** `http://host:port/metrics` when metricsPort was given, else null. */
  readonly metricsUrl: string | null;
  /** The `stats` counters as a name → value record. */
  stats(): Promise<Record<string, string>>;
  /** Drops every item. */
  flush(): Promise<void>;
  /** Stops the server; safe to call more than once. */
  stop(): Promise<void>;
}

export interface InProcessServer extends RunningServer {
  /** The server itself, for tests that inspect the store (null with threads above 1: see pool). */
  readonly server: CacheServer | null;
  /** With threads above 1: the worker threads serving the port, and the shared store. */
  readonly pool: WorkerPool | null;
  /** The histograms /metrics serves (the protocol records into them); null without metricsPort. */
  readonly latency: LatencyHistograms | null;
}

export interface ChildServer extends RunningServer {
  readonly pid: number;
  /** Resolves with the exit code once the process ended. */
  readonly exited: Promise<number>;
}

export interface SpawnOptions extends ServerOptions {
  /** The cacheismo executable; default $CACHEISMO_BIN, else `bun run src/main.ts` of this package. */
  executable?: string;
  /** How long the process has to answer `stats` (default 10 s). */
  startTimeoutMs?: number;
}

/**
 * Runs a server inside this process: on this thread unless `threads` asks for more (then a pool
 * of worker threads of this process serves the port).
 */
export async function startServer(options: ServerOptions = {}): Promise<InProcessServer> {
  const config = withOptions({ ...defaultConfig(), port: 0, threads: 1 }, options);
  // As in main.ts: commands are timed only when /metrics serves the timings.
  const timed = config.metricsPort > 0;
  const log = new Logger({ format: config.logFormat as LogFormat, verbose: config.verbose });
  let server: CacheServer | null = null;
  let pool: WorkerPool | null = null;
  let latency: LatencyHistograms | null = null;
  if (config.threads > 1) {
    pool = new WorkerPool(config, config.threads, {
      log: () => {},
      shutdown: () => void stop(),
      crashed: (thread, reason) => {
        throw new Error(`cacheismo worker thread ${thread} died: ${reason}`);
      },
    });
    // As in main.ts: the memory file is restored before the port opens.
    if (config.memoryFile) restoreAtStart(config.memoryFile, pool.store, log);
    await pool.start(timed);
  } else {
    latency = timed ? new LatencyHistograms() : null;
    server = new CacheServer(config, { latency });
    if (config.memoryFile) restoreAtStart(config.memoryFile, server.store, log);
    await server.start();
  }
  const source: StatsSource = (pool ?? server)!;
  const port = pool?.port ?? server!.port;
  let running = true;
  let metrics: MetricsServer | null = null;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      running = false;
      await metrics?.stop();
      await (pool?.drain(0) ?? server!.stop());
      if (config.memoryFile) saveAtStop(config.memoryFile, source.store, log);
    })());
  if (timed) {
    try {
      metrics = startMetrics({ hostname: config.listen, port: config.metricsPort, source, latency: () => latency ?? pool!.latency(), healthy: () => running });
    } catch (e) {
      await stop();
      throw e;
    }
  }
  return {
    host: config.listen,
    port,
    url: `memcached://${config.listen}:${port}`,
    metricsUrl: metrics ? `http://${config.listen}:${metrics.port}/metrics` : null,
    stats: async () => Object.fromEntries((statsLines(source, "") ?? []).map(([k, v]) => [k, String(v)])),
    flush: async () => source.store.lock.hold(() => source.store.flushAll()),
    stop,
    server,
    pool,
    latency,
    [Symbol.asyncDispose]: stop,
  };
}

const MAIN = resolve(import.meta.dir, "main.ts");
/** Children still running, killed if this process exits without stopping them. */
const children = new Set<Subprocess>();

function track(proc: Subprocess): void {
  if (children.size === 0) process.once("exit", killChildren);
  children.add(proc);
  void proc.exited.then(() => {
    children.delete(proc);
    if (children.size === 0) process.off("exit", killChildren);
  });
}

function killChildren(): void {
  for (const child of children) child.kill("SIGKILL");
}

/** Runs a server as a child process: the executable, or this package's source under bun. */
export async function spawnServer(options: SpawnOptions = {}): Promise<ChildServer> {
  const { executable, startTimeoutMs = 10_000, ...serverOptions } = options;
  const config = withOptions({ ...defaultConfig(), port: 0 }, serverOptions);
  const bin = executable ?? process.env.CACHEISMO_BIN;
  const command = bin ? [resolve(bin)] : [process.execPath, "run", MAIN];
  const host = connectHost(config.listen);
  // A free port can be taken between probing and binding; then the child exits and we try another.
  for (let attempt = 1; ; attempt++) {
    const port = config.port || freePort(host);
    const proc = Bun.spawn([...command, ...toArgs({ ...config, port })], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    track(proc);
    const stderr = tail(proc.stderr);
    const ready = await waitForPid(proc, host, port, startTimeoutMs);
    if (ready === "ready") return childHandle(proc, config, host, port);
    if (ready === "exited" && config.port === 0 && attempt < 3) continue;
    proc.kill("SIGKILL");
    await proc.exited;
    throw new Error(`cacheismo on port ${port} ${ready === "exited" ? `exited with ${proc.exitCode}` : `did not answer within ${startTimeoutMs} ms`}: ${await stderr(500)}`);
  }
}

function childHandle(proc: Subprocess<"ignore", "ignore", "pipe">, config: Config, host: string, port: number): ChildServer {
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      // Past its own --shutdown-timeout (plus slack), the child is stuck: kill it outright.
      const graceMs = config.shutdownTimeoutSeconds * 1000 + 5000;
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await proc.exited;
      clearTimeout(timer);
    })());
  return {
    host: config.listen,
    port,
    url: `memcached://${config.listen}:${port}`,
    metricsUrl: config.metricsPort > 0 ? `http://${config.listen}:${config.metricsPort}/metrics` : null,
    pid: proc.pid,
    exited: proc.exited,
    stats: async () => parseStats(await request(host, port, "stats\r\n", "END\r\n", 5000)),
    flush: async () => {
      const reply = await request(host, port, "flush_all\r\n", "\r\n", 5000);
      if (reply !== "OK\r\n") throw new Error(`flush_all answered ${JSON.stringify(reply)}`);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Where to connect to reach a server listening on `listen` (a wildcard means this host). */
function connectHost(listen: string): string {
  if (listen === "0.0.0.0" || listen === "") return "127.0.0.1";
  if (listen === "::") return "::1";
  return listen;
}

function freePort(host: string): number {
  const probe = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/**
 * Polls `stats` until it answers with the child's own pid (so a stranger that grabbed the port
 * is never mistaken for it); "exited" if the child died first.
 */
async function waitForPid(proc: Subprocess, host: string, port: number, timeoutMs: number): Promise<"ready" | "exited" | "timeout"> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return "exited";
    try {
      const stats = parseStats(await request(host, port, "stats\r\n", "END\r\n", 1000));
      if (stats.pid === String(proc.pid)) return "ready";
    } catch {
      // not listening yet
    }
    await Bun.sleep(25);
  }
  return proc.exitCode !== null || proc.signalCode !== null ? "exited" : "timeout";
}

/** Sends one request on a fresh connection and resolves with the reply up to `terminator`. */
async function request(host: string, port: number, text: string, terminator: string, timeoutMs: number): Promise<string> {
  const { promise, resolve: done, reject } = Promise.withResolvers<string>();
  let reply = "";
  const decoder = new TextDecoder();
  const socket = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data(s, chunk) {
        reply += decoder.decode(chunk, { stream: true });
        if (reply.endsWith(terminator) || reply.endsWith("ERROR\r\n")) {
          done(reply); // first: end() runs close() at once, which would reject
          s.end();
        }
      },
      close() {
        reject(new Error(`connection closed after ${JSON.stringify(reply)}`));
      },
      error(_s, e) {
        reject(e);
      },
    },
  });
  const timer = setTimeout(() => {
    socket.end();
    reject(new Error(`no reply to ${JSON.stringify(text.trim())} within ${timeoutMs} ms`));
  }, timeoutMs);
  socket.write(text);
  try {
    return await promise;
  } finally {
    clearTimeout(timer);
  }
}

function parseStats(reply: string): Record<string, string> {
  const stats: Record<string, string> = {};
  for (const line of reply.split("\r\n")) {
    const m = /^STAT (\S+) (.*)$/.exec(line);
    if (m) stats[m[1]] = m[2];
  }
  return stats;
}

/**
 * Keeps reading a stream so the child never blocks on a full pipe. Resolves, once the stream
 * ended or after `ms` more, to its last 4 KiB.
 */
function tail(stream: ReadableStream<Uint8Array>): (ms: number) => Promise<string> {
  let text = "";
  const ended = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text = (text + decoder.decode(chunk, { stream: true })).slice(-4096);
  })();
  return async (ms) => {
    await Promise.race([ended, Bun.sleep(ms)]);
    return text.trim() || "(no output)";
  };
}

export { CacheServer } from "./server.ts";
export { LatencyHistograms } from "./metrics.ts";
export type { Config } from "./config.ts";
