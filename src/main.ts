#!/usr/bin/env bun
/**
 * Command-line entry: flags and --config file → config → server, logging, metrics and signals.
 *   SIGTERM, SIGINT  stop accepting, give in-flight requests --shutdown-timeout seconds, exit 0
 *   SIGHUP           re-read the config file, apply the live options, reload the Lua scripts
 * Exit codes: 0 done, 1 cannot start (port taken, ...), 2 bad flags or config file.
 */
import { applyReload, type Config, ConfigError, helpText, loadConfig } from "./config.ts";
import { type Level, type LogFormat, Logger } from "./log.ts";
import { LatencyHistograms, type MetricsServer, startMetrics } from "./metrics.ts";
import { CacheServer } from "./server.ts";
import { COMMIT, VERSION } from "./version.ts";

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
  // With /metrics on, the protocol times each command into it (two clock reads per request, so
  // only then).
  const latency = config.metricsPort > 0 ? new LatencyHistograms() : null;
  let server: CacheServer;
  try {
    server = new CacheServer(config, {
      latency,
      log: (level, msg) => log.log(level as Level, msg),
      onShutdown: () => {
        log.info("stopped by the shutdown command");
        process.exit(0);
      },
    });
  } catch (e) {
    // Settings that only make sense together (--cluster, --peers, --self, --hash, --auth-file).
    process.stderr.write(`cacheismo: ${(e as Error).message}\n`);
    process.exit(2);
  }
  try {
    await server.start();
  } catch (e) {
    log.error("cannot listen", { addr: `${config.listen}:${config.port}`, error: (e as Error).message });
    process.exit(1);
  }

  let stopping = false;
  let metrics: MetricsServer | null = null;
  if (latency !== null) {
    try {
      metrics = startMetrics({ hostname: config.listen, port: config.metricsPort, source: server, latency, healthy: () => !stopping });
    } catch (e) {
      log.error("cannot serve metrics", { addr: `${config.listen}:${config.metricsPort}`, error: (e as Error).message });
      process.exit(1);
    }
  }
  log.info("listening", {
    addr: `${config.listen}:${server.port}`,
    memory_mb: config.memoryLimitMb,
    metrics: metrics ? `${config.listen}:${metrics.port}` : "off",
    config: config.configFile || "none",
    version: VERSION,
    commit: COMMIT,
  });

  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) {
      log.warn("second signal: exiting without waiting", { signal });
      process.exit(1);
    }
    stopping = true;
    const timeoutMs = config.shutdownTimeoutSeconds * 1000;
    log.info("shutting down", { signal, timeout_s: config.shutdownTimeoutSeconds });
    // drain() closes each connection once it has finished what it started, and the rest at the deadline.
    await server.drain(timeoutMs);
    await metrics?.stop();
    log.info("stopped", { signal });
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  let reloading = Promise.resolve();
  process.on("SIGHUP", () => {
    // Signals can arrive faster than a reload finishes; run them one after another.
    reloading = reloading.then(() => reload(argv, config, log, server));
  });
}


/** SIGHUP: config file again (flags still win), live options into the running config, scripts. */
async function reload(argv: readonly string[], running: Config, log: Logger, server: CacheServer): Promise<void> {
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
    const scripts = await server.reloadScripts();
    for (const error of scripts) log.error("script load error", { error });
    log.info("reloaded", { config: running.configFile || "none", changed: applied.length, pending_restart: needRestart.length, script_errors: scripts.length });
  } catch (e) {
    log.error("script reload failed; keeping the loaded scripts", { error: (e as Error).message });
  }
}

void main(process.argv.slice(2));
