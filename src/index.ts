/**
 * Programmatic API, for `bun test` fixtures and embedding:
 *   await using server = await startServer({ port: 0, memoryLimitMb: 16 });
 * runs a server in this process; `port: 0` picks a free port.
 */
import { type Config, defaultConfig } from "./config.ts";
import { CacheServer } from "./server.ts";
import { statsLines } from "./stats.ts";

export type ServerOptions = Partial<Omit<Config, "help" | "version">>;

export interface RunningServer extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** `memcached://host:port` */
  readonly url: string;
  /** The `stats` counters as a name → value record. */
  stats(): Record<string, string>;
  /** Drops every item. */
  flush(): void;
  stop(): Promise<void>;
  /** The server itself, for tests that inspect the store. */
  readonly server: CacheServer;
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const config: Config = { ...defaultConfig(), port: 0, ...options };
  const server = new CacheServer(config);
  server.start();
  const stop = (): Promise<void> => server.stop();
  return {
    host: config.listen,
    port: server.port,
    url: `memcached://${config.listen}:${server.port}`,
    stats: () => Object.fromEntries((statsLines(server, "") ?? []).map(([k, v]) => [k, String(v)])),
    flush: () => server.store.flushAll(),
    stop,
    server,
    [Symbol.asyncDispose]: stop,
  };
}

export { CacheServer } from "./server.ts";
export type { Config } from "./config.ts";
