#!/usr/bin/env bun
/**
 * Command-line entry: flags and --config file → config → server, logging, metrics and signals.
 *   SIGTERM, SIGINT  stop accepting, give in-flight requests --shutdown-timeout seconds, exit 0
 *   SIGHUP           re-read the config file, apply the live options, reload the Lua scripts
 * With --memory-file the cache is restored before the port opens and saved after a graceful stop.
 * Exit codes: 0 done, 1 cannot start (port taken, ...), 2 bad flags or config file.
 */
import { startTrimmingCodePages } from "./code-pages.ts";
import { applyReload, type Config, ConfigError, helpText, loadConfig } from "./config.ts";
import { type Level, type LogFormat, Logger } from "./log.ts";
import { restoreAtStart, saveAtStop } from "./memory-file/warm-restart.ts";
import { LatencyHistograms, type MetricsServer, startMetrics } from "./metrics.ts";
import { CacheServer } from "./server.ts";
import type { StatsSource } from "./stats.ts";
import type { Store } from "./store/store.ts";
import { COMMIT, VERSION } from "./version.ts";
import { threadCount, WorkerPool, WorkerStartError } from "./worker-pool.ts";

/** What main drives, whether one thread serves the port or a pool of workers. */
interface Serving {
  readonly port: number;
  readonly source: StatsSource;
  /** The store every thread serves (the main thread's view of it). */
  readonly store: Store;
  /** The command latencies /metrics renders (null without --metrics-port). */
  latency(): LatencyHistograms | null;
  /** Opens the port (and starts the threads); rejects when it cannot. */
  listen(): Promise<void>;
  drain(timeoutMs: number): Promise<void>;
  /** SIGHUP: apply the running config (live options changed) and reload the scripts; their errors. */
  reload(config: Config): Promise<string[]>;
}

async function main(argv: readonly string[]): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(argv);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`cacheismo: ${e.message}\nrun "cacheismo --help" to see every option\n`);
    process.exit(2);
  }
  if (config.help) {
    process.stdout.write(helpText());
    process.exit(0);
  }
  if (config.version) {
    process.stdout.write(`cacheismo ${VERSION} (${COMMIT})\n`);
    process.exit(0);
  }

  const log = new Logger({ format: config.logFormat as LogFormat, verbose: config.verbose });
  const threads = threadCount(config.threads);
  let serving: Serving;
  try {
    serving = threads === 1 ? alone(config, log, () => exitAfterStop()) : pool(config, threads, log, () => exitAfterStop());
  } catch (e) {
    // Settings that only make sense together (--cluster, --peers, --self, --hash, --auth-file).
    process.stderr.write(`cacheismo: ${(e as Error).message}\n`);
    process.exit(2);
  }

  // Every graceful stop ends here, once no thread serves any more.
  const exitAfterStop = (): never => {
    if (config.memoryFile) saveAtStop(config.memoryFile, serving.store, log);
    process.exit(0);
  };

  // Signals are handled from here on: one that comes while the port opens waits for it.
  let stopping = false;
  let metrics: MetricsServer | null = null;
  let listening: Promise<void> = Promise.resolve();
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) {
      log.warn("second signal: exiting without waiting", { signal });
      process.exit(1);
    }
    stopping = true;
    await listening;
    const timeoutMs = config.shutdownTimeoutSeconds * 1000;
    log.info("shutting down", { signal, timeout_s: config.shutdownTimeoutSeconds });
    // drain() closes each connection once it has finished what it started, and the rest at the deadline.
    await serving.drain(timeoutMs);
    await metrics?.stop();
    log.info("stopped", { signal });
    exitAfterStop();
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  let reloading = Promise.resolve();
  process.on("SIGHUP", () => {
    // Signals can arrive faster than a reload finishes; run them one after another.
    reloading = reloading.then(() => listening).then(() => reload(argv, config, log, serving));
  });

  if (config.memoryFile) restoreAtStart(config.memoryFile, serving.store, log);
  // /metrics first, so that it answers once the cache port does.
  if (config.metricsPort > 0) {
    try {
      metrics = startMetrics({ hostname: config.listen, port: config.metricsPort, source: serving.source, latency: () => serving.latency()!, healthy: () => !stopping });
    } catch (e) {
      log.error("cannot serve metrics", { addr: `${config.listen}:${config.metricsPort}`, error: (e as Error).message });
      process.exit(1);
    }
  }
  // Before the servers start: each takes the RSS it starts with as part of its RSS ceiling.
  const codeReleased = startTrimmingCodePages();
  listening = serving.listen();
  try {
    await listening;
  } catch (e) {
    if (e instanceof WorkerStartError && e.settings) {
      process.stderr.write(`cacheismo: ${e.message}\n`);
      process.exit(2);
    }
    log.error("cannot listen", { addr: `${config.listen}:${config.port}`, error: (e as Error).message });
    process.exit(1);
  }
  log.info("listening", {
    addr: `${config.listen}:${serving.port}`,
    memory_mb: config.memoryLimitMb,
    threads,
    metrics: metrics ? `${config.listen}:${metrics.port}` : "off",
    config: config.configFile || "none",
    code_released_mb: codeReleased === null ? "n/a" : (codeReleased / 2 ** 20).toFixed(1),
    version: VERSION,
    commit: COMMIT,
  });
}

/** SIGHUP: config file again (flags still win), live options into the running config, scripts. */
async function reload(argv: readonly string[], running: Config, log: Logger, serving: Serving): Promise<void> {
  let next: Config;
  try {
    next = loadConfig(argv);
  } catch (e) {
    log.error("reload failed; keeping the running configuration", { error: (e as Error).message });
    return;
  }
  const { applied, needRestart } = applyReload(running, next);
  log.configure(running.logFormat as LogFormat, running.verbose);
  for (const c of applied) log.info("config changed", { option: c.option.long, from: c.from, to: c.to });
  for (const c of needRestart) log.warn("config change needs a restart", { option: c.option.long, running: c.from, file: c.to });
  try {
    const scripts = await serving.reload(running);
    for (const error of scripts) log.error("script load error", { error });
    log.info("reloaded", { config: running.configFile || "none", changed: applied.length, pending_restart: needRestart.length, script_errors: scripts.length });
  } catch (e) {
    log.error("script reload failed; keeping the loaded scripts", { error: (e as Error).message });
  }
}

/** One thread: the server runs in this one, as before there were workers. Throws on bad settings. */
function alone(config: Config, log: Logger, stopped: () => void): Serving {
  // With /metrics on, the protocol times each command into it (two clock reads per request, so
  // only then).
  const latency = config.metricsPort > 0 ? new LatencyHistograms() : null;
  const server = new CacheServer(config, {
    latency,
    log: (level, msg) => log.log(level as Level, msg),
    onShutdown: () => {
      log.info("stopped by the shutdown command");
      stopped();
    },
  });
  return {
    get port() {
      return server.port;
    },
    source: server,
    store: server.store,
    latency: () => latency,
    listen: () => server.start(),
    drain: (timeoutMs) => server.drain(timeoutMs),
    reload: () => server.reloadScripts(),
  };
}

/**
 * Several threads: a pool of workers on one port over shared memory; this thread only steers.
 * Bad settings show when the workers build their servers (listen rejects with WorkerStartError).
 */
function pool(config: Config, threads: number, log: Logger, stopped: () => void): Serving {
  const workers: WorkerPool = new WorkerPool(config, threads, {
    log: (level, msg) => log.log(level as Level, msg),
    shutdown: () => {
      log.info("stopped by the shutdown command");
      void workers.drain(config.shutdownTimeoutSeconds * 1000).then(stopped);
    },
    crashed: (thread, reason) => {
      log.error("a worker thread died; exiting so that the service manager restarts the server", { thread, reason });
      process.exit(1);
    },
  });
  const timed = config.metricsPort > 0;
  return {
    get port() {
      return workers.port;
    },
    source: workers,
    store: workers.store,
    latency: () => (timed ? workers.latency() : null),
    listen: () => workers.start(timed),
    drain: (timeoutMs) => workers.drain(timeoutMs),
    reload: (running) => workers.reload(running),
  };
}

void main(process.argv.slice(2));
