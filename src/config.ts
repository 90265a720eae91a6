/**
 * Every option in one table: its name, flags, default, validation and help text. The command
 * line parser and the help screen are both generated from it.
 */
import { readFileSync } from "node:fs";

export interface Config {
  port: number;
  listen: string;
  memoryLimitMb: number;
  threads: number;
  connLimit: number;
  maxItemSizeBytes: number;
  verbose: number;
  maxConnBufferBytes: number;
  idleTimeoutSeconds: number;
  enableShutdown: boolean;
  disableFlushAll: boolean;
  smallPages: boolean;
  authFile: string;
  eviction: string;
  virtualKeys: boolean;
  scriptsDir: string;
  scriptTimeoutMs: number;
  scriptMemoryMb: number;
  cluster: boolean;
  peers: string;
  self: string;
  hash: string;
  peerTimeoutMs: number;
  serverFailureLimit: number;
  autoEject: boolean;
  serverRetryTimeoutMs: number;
  configFile: string;
  logFormat: string;
  metricsPort: number;
  shutdownTimeoutSeconds: number;
  memoryFile: string;
  help: boolean;
  version: boolean;
}

type Kind = "int" | "size" | "string" | "flag" | "count";

interface OptionSpec {
  readonly key: keyof Config;
  readonly long: string;
  readonly short?: string;
  readonly kind: Kind;
  readonly default: number | string | boolean;
  readonly min?: number;
  readonly max?: number;
  readonly help: string;
  /** The only values a string option takes. */
  readonly choices?: readonly string[];
  /** Applied to the running server by SIGHUP; any other change waits for a restart. */
  readonly live?: boolean;
  /** Meaningless inside a config file (--help, --version, --config itself). */
  readonly cliOnly?: boolean;
}

const MB = 1024 * 1024;

export const OPTIONS: readonly OptionSpec[] = [
  { key: "port", long: "port", short: "p", kind: "int", default: 11211, min: 0, max: 65535, help: "TCP port to listen on (0 picks a free one)" },
  { key: "listen", long: "listen", short: "l", kind: "string", default: "127.0.0.1", help: "interface to listen on" },
  { key: "memoryLimitMb", long: "memory-limit", short: "m", kind: "int", default: 64, min: 1, max: 1024 * 1024, help: "item memory in megabytes" },
  { key: "threads", long: "threads", short: "t", kind: "int", default: 0, min: 0, max: 64, help: "threads serving the port (0 = the cores this process may use, at most 4)" },
  { key: "connLimit", long: "conn-limit", short: "c", kind: "int", default: 1024, min: 1, max: 1 << 20, live: true, help: "max simultaneous connections" },
  { key: "maxItemSizeBytes", long: "max-item-size", short: "I", kind: "size", default: MB, min: 1024, max: 1024 * MB, help: "max item size (header + key + value), e.g. 1m, 512k" },
  { key: "verbose", long: "verbose", short: "v", kind: "count", default: 0, live: true, help: "log more: -v adds events (info), -vv debug; warnings and errors always" },
  { key: "maxConnBufferBytes", long: "max-conn-buffer", kind: "size", default: 4 * MB, min: 64 * 1024, max: 1024 * MB, live: true, help: "per-connection unsent output above which reading pauses" },
  { key: "idleTimeoutSeconds", long: "idle-timeout", kind: "int", default: 0, min: 0, max: 86400 * 365, live: true, help: "close connections idle this many seconds (0 = never)" },
  { key: "enableShutdown", long: "enable-shutdown", kind: "flag", default: false, live: true, help: "allow the shutdown command" },
  { key: "disableFlushAll", long: "disable-flush-all", short: "F", kind: "flag", default: false, help: "refuse the flush_all command" },
  { key: "smallPages", long: "small-pages", kind: "flag", default: false, help: "keep item memory on 4 KiB pages (default: ask Linux for 2 MiB pages)" },
  { key: "eviction", long: "eviction", kind: "string", default: "lru", choices: ["lru", "gdsf"], help: "what leaves when memory is full: lru (global LRU) or gdsf (size-aware GreedyDual-Size-Frequency)" },
  { key: "authFile", long: "auth-file", kind: "string", default: "", help: "require clients to authenticate with a user:password line from this file (memcached's ASCII auth)" },
  { key: "virtualKeys", long: "virtual-keys", short: "e", kind: "flag", default: false, help: "run Lua objects behind virtual keys (get type:method:key:args)" },
  { key: "scriptsDir", long: "scripts-dir", short: "d", kind: "string", default: "", help: "directory of user Lua object scripts (default: bundled objects only)" },
  { key: "scriptTimeoutMs", long: "script-timeout-ms", kind: "int", default: 100, min: 1, max: 60000, help: "time budget of one Lua call" },
  { key: "scriptMemoryMb", long: "script-memory-mb", kind: "int", default: 64, min: 4, max: 4096, help: "Lua heap limit" },
  { key: "cluster", long: "cluster", kind: "flag", default: false, help: "route keys to their owner among --peers" },
  { key: "peers", long: "peers", kind: "string", default: "", help: "cluster members host:port[:weight],... (this node included)" },
  { key: "self", long: "self", kind: "string", default: "", help: "this node's host:port as written in --peers" },
  { key: "hash", long: "hash", kind: "string", default: "md5", help: "key hash for the ketama continuum (twemproxy names: md5, fnv1a_64, murmur, ...)" },
  { key: "peerTimeoutMs", long: "peer-timeout-ms", kind: "int", default: 500, min: 1, max: 600000, help: "time a peer has to answer a forwarded request" },
  { key: "serverFailureLimit", long: "server-failure-limit", kind: "int", default: 2, min: 1, max: 1000000, help: "consecutive failures (timeouts, connection errors) after which a peer is down (twemproxy's server_failure_limit)" },
  { key: "autoEject", long: "auto-eject", kind: "flag", default: false, help: "take a down peer out of the continuum, its keys to the other nodes, as twemproxy's auto_eject_hosts" },
  { key: "serverRetryTimeoutMs", long: "server-retry-timeout", kind: "int", default: 30000, min: 1, max: 86400000, help: "with --auto-eject, ms an ejected peer stays out before it is probed to rejoin (twemproxy's server_retry_timeout)" },
  { key: "configFile", long: "config", kind: "string", default: "", cliOnly: true, help: "TOML file of options, keyed by long option name (memory-limit = 64); flags override it" },
  { key: "logFormat", long: "log-format", kind: "string", default: "logfmt", choices: ["logfmt", "json"], live: true, help: "log line format on stderr: logfmt or json" },
  { key: "metricsPort", long: "metrics-port", kind: "int", default: 0, min: 0, max: 65535, help: "HTTP port for /metrics (Prometheus) and /healthz on the listen address (0 = off)" },
  { key: "shutdownTimeoutSeconds", long: "shutdown-timeout", kind: "int", default: 5, min: 0, max: 3600, live: true, help: "on SIGTERM/SIGINT, time in-flight requests get to finish" },
  { key: "memoryFile", long: "memory-file", kind: "string", default: "", help: "write the cache to this file on a graceful stop and read it back at start (warm restart; empty = off)" },
  { key: "help", long: "help", short: "h", kind: "flag", default: false, cliOnly: true, help: "print this help and exit" },
  { key: "version", long: "version", short: "V", kind: "flag", default: false, cliOnly: true, help: "print the version and exit" },
];

export class ConfigError extends Error {}

export function defaultConfig(): Config {
  const config: Record<string, unknown> = {};
  for (const o of OPTIONS) config[o.key] = o.default;
  return config as unknown as Config;
}

/** Parses memcached-style and long flags: `-p 1`, `-p1`, `--port 1`, `--port=1`, `-vv`. */
export function parseArgs(argv: readonly string[], base: Config = defaultConfig()): Config {
  return parseArgsGiven(argv, base).config;
}

/** parseArgs, also telling which options the command line set (they win over a config file). */
function parseArgsGiven(argv: readonly string[], base: Config): { config: Config; given: Set<keyof Config> } {
  const config: Record<string, unknown> = { ...base };
  const given = new Set<keyof Config>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      spec = OPTIONS.find((o) => o.long === name);
      if (!spec) throw new ConfigError(`unknown option --${name}`);
    } else if (arg.startsWith("-") && arg.length >= 2) {
      const letter = arg[1];
      spec = OPTIONS.find((o) => o.short === letter);
      if (!spec) throw new ConfigError(`unknown option -${letter}`);
      if (spec.kind === "count") {
        if (!/^-(v)+$/.test(arg)) throw new ConfigError(`bad option ${arg}`);
        config[spec.key] = (given.has(spec.key) ? (config[spec.key] as number) : 0) + arg.length - 1;
        given.add(spec.key);
        continue;
      }
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}`);
    }
    if (spec.kind === "flag" || spec.kind === "count") {
      if (inline !== undefined) throw new ConfigError(`--${spec.long} takes no value`);
      config[spec.key] = spec.kind === "flag" ? true : (given.has(spec.key) ? (config[spec.key] as number) : 0) + 1;
      given.add(spec.key);
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new ConfigError(`--${spec.long} needs a value`);
    config[spec.key] = parseValue(spec, raw);
    given.add(spec.key);
  }
  return { config: config as unknown as Config, given };
}

/** Validates one option's text; `name` is how errors refer to it (the flag, or file: key). */
export function parseValue(spec: OptionSpec, raw: string, name = `--${spec.long}`): number | string | boolean {
  if (spec.kind === "string") {
    if (spec.choices && !spec.choices.includes(raw)) throw new ConfigError(`${name} must be one of ${spec.choices.join(", ")}`);
    return raw;
  }
  if (spec.kind === "flag") {
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new ConfigError(`${name} must be true or false`);
  }
  let n: number;
  if (spec.kind === "size") {
    const m = /^(\d+)([kKmMgG]?)$/.exec(raw);
    if (!m) throw new ConfigError(`${name}: ${JSON.stringify(raw)} is not a size (e.g. 1m, 512k, 2048)`);
    const unit = m[2].toLowerCase();
    n = Number(m[1]) * (unit === "k" ? 1024 : unit === "m" ? MB : unit === "g" ? 1024 * MB : 1);
  } else {
    if (!/^\d+$/.test(raw)) throw new ConfigError(`${name}: ${JSON.stringify(raw)} is not a whole number`);
    n = Number(raw);
  }
  if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
    throw new ConfigError(`${name} must be between ${spec.min} and ${spec.max}`);
  }
  return n;
}

/**
 * Reads a TOML config file's text over `base`. Keys are the long option names exactly as on the
 * command line (`memory-limit = 64`, `max-item-size = "2m"`, `enable-shutdown = true`); each value
 * goes through the same validation as its flag. An unknown key is an error naming it.
 */
export function parseConfigFile(text: string, source: string, base: Config = defaultConfig()): Config {
  let table: Record<string, unknown>;
  try {
    table = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${source}: ${(e as Error).message}`);
  }
  const config: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(table)) {
    const spec = OPTIONS.find((o) => o.long === key);
    if (!spec) throw new ConfigError(`${source}: unknown key "${key}"`);
    if (spec.cliOnly) throw new ConfigError(`${source}: "${key}" is a command-line flag, not a config file key`);
    const name = `${source}: ${key}`;
    config[spec.key] = parseValue(spec, tomlText(spec, value, name), name);
  }
  return config as unknown as Config;
}

/** A TOML value as the text its flag would take, if its TOML type suits the option. */
function tomlText(spec: OptionSpec, value: unknown, name: string): string {
  const ok =
    spec.kind === "string" ? typeof value === "string"
    : spec.kind === "flag" ? typeof value === "boolean"
    : spec.kind === "size" ? typeof value === "string" || Number.isInteger(value)
    : Number.isInteger(value);
  if (!ok) {
    const want = spec.kind === "string" ? "a string" : spec.kind === "flag" ? "true or false" : spec.kind === "size" ? "a whole number or a size string" : "a whole number";
    throw new ConfigError(`${name} must be ${want}`);
  }
  return String(value);
}

/** The whole configuration: defaults, then the --config file if one is named, then the flags. */
export function loadConfig(argv: readonly string[], readFile: (path: string) => string = (p) => readFileSync(p, "utf8")): Config {
  const { config: cli, given } = parseArgsGiven(argv, defaultConfig());
  if (cli.configFile === "") return cli;
  let text: string;
  try {
    text = readFile(cli.configFile);
  } catch (e) {
    throw new ConfigError(`cannot read ${cli.configFile}: ${(e as Error).message}`);
  }
  const merged: Record<string, unknown> = { ...parseConfigFile(text, cli.configFile) };
  for (const key of given) merged[key] = cli[key];
  return merged as unknown as Config;
}

/** `base` with programmatic options laid over it, each checked like its flag (errors name the key). */
export function withOptions(base: Config, options: Partial<Config>): Config {
  const config: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const spec = OPTIONS.find((o) => o.key === key);
    if (!spec) throw new ConfigError(`unknown option ${key}`);
    config[key] = parseValue(spec, String(value), key);
  }
  return config as unknown as Config;
}

export interface ConfigChange {
  readonly option: OptionSpec;
  readonly from: number | string | boolean;
  readonly to: number | string | boolean;
}

/** Options whose value differs between two configurations, in table order. */
export function configChanges(before: Config, after: Config): ConfigChange[] {
  const changes: ConfigChange[] = [];
  for (const option of OPTIONS) {
    if (before[option.key] !== after[option.key]) changes.push({ option, from: before[option.key], to: after[option.key] });
  }
  return changes;
}

/**
 * SIGHUP: copies the live options of `next` into `running` in place (the server reads its config
 * object on each use, so they take effect at once); the other changes wait for a restart.
 */
export function applyReload(running: Config, next: Config): { applied: ConfigChange[]; needRestart: ConfigChange[] } {
  const applied: ConfigChange[] = [];
  const needRestart: ConfigChange[] = [];
  const target = running as unknown as Record<string, unknown>;
  for (const change of configChanges(running, next)) {
    if (change.option.live) {
      target[change.option.key] = change.to;
      applied.push(change);
    } else {
      needRestart.push(change);
    }
  }
  return { applied, needRestart };
}

/** The flags that give a fresh process these options (those equal to the default are left out). */
export function toArgs(options: Partial<Config>): string[] {
  const args: string[] = [];
  for (const o of OPTIONS) {
    const value = options[o.key];
    if (value === undefined || value === o.default) continue;
    if (o.kind === "flag") args.push(`--${o.long}`); // every flag defaults to false, so differing means set
    else if (o.kind === "count") for (let i = 0; i < (value as number); i++) args.push(`--${o.long}`);
    else args.push(`--${o.long}=${value}`);
  }
  return args;
}

export function helpText(): string {
  const lines = ["usage: cacheismo [options]", ""];
  for (const o of OPTIONS) {
    const flags = (o.short ? `-${o.short}, ` : "    ") + `--${o.long}` + (o.kind === "flag" || o.kind === "count" ? "" : " <value>");
    const def = o.kind === "flag" || o.kind === "count" || o.default === "" ? "" : ` (default ${o.default})`;
    lines.push(`  ${flags.padEnd(34)} ${o.help}${def}`);
  }
  return lines.join("\n") + "\n";
}
