/**
 * Every option in one table: its name, flags, default, validation and help text. The command
 * line parser and the help screen are both generated from it.
 */

export interface Config {
  port: number;
  listen: string;
  memoryLimitMb: number;
  connLimit: number;
  maxItemSizeBytes: number;
  verbose: number;
  maxConnBufferBytes: number;
  idleTimeoutSeconds: number;
  enableShutdown: boolean;
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
}

const MB = 1024 * 1024;

export const OPTIONS: readonly OptionSpec[] = [
  { key: "port", long: "port", short: "p", kind: "int", default: 11211, min: 0, max: 65535, help: "TCP port to listen on (0 picks a free one)" },
  { key: "listen", long: "listen", short: "l", kind: "string", default: "127.0.0.1", help: "interface to listen on" },
  { key: "memoryLimitMb", long: "memory-limit", short: "m", kind: "int", default: 64, min: 1, max: 1024 * 1024, help: "item memory in megabytes" },
  { key: "connLimit", long: "conn-limit", short: "c", kind: "int", default: 1024, min: 1, max: 1 << 20, help: "max simultaneous connections" },
  { key: "maxItemSizeBytes", long: "max-item-size", short: "I", kind: "size", default: MB, min: 1024, max: 1024 * MB, help: "max item size (header + key + value), e.g. 1m, 512k" },
  { key: "verbose", long: "verbose", short: "v", kind: "count", default: 0, help: "log more (-v events, -vv requests)" },
  { key: "maxConnBufferBytes", long: "max-conn-buffer", kind: "size", default: 4 * MB, min: 64 * 1024, max: 1024 * MB, help: "per-connection unsent output above which reading pauses" },
  { key: "idleTimeoutSeconds", long: "idle-timeout", kind: "int", default: 0, min: 0, max: 86400 * 365, help: "close connections idle this many seconds (0 = never)" },
  { key: "enableShutdown", long: "enable-shutdown", kind: "flag", default: false, help: "allow the shutdown command" },
  { key: "help", long: "help", short: "h", kind: "flag", default: false, help: "print this help and exit" },
  { key: "version", long: "version", short: "V", kind: "flag", default: false, help: "print the version and exit" },
];

export class ConfigError extends Error {}

export function defaultConfig(): Config {
  const config: Record<string, unknown> = {};
  for (const o of OPTIONS) config[o.key] = o.default;
  return config as unknown as Config;
}

/** Parses memcached-style and long flags: `-p 1`, `-p1`, `--port 1`, `--port=1`, `-vv`. */
export function parseArgs(argv: readonly string[], base: Config = defaultConfig()): Config {
  const config: Record<string, unknown> = { ...base };
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
        config[spec.key] = (config[spec.key] as number) + arg.length - 1;
        continue;
      }
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}`);
    }
    if (spec.kind === "flag" || spec.kind === "count") {
      if (inline !== undefined) throw new ConfigError(`--${spec.long} takes no value`);
      config[spec.key] = spec.kind === "flag" ? true : (config[spec.key] as number) + 1;
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new ConfigError(`--${spec.long} needs a value`);
    config[spec.key] = parseValue(spec, raw);
  }
  return config as unknown as Config;
}

export function parseValue(spec: OptionSpec, raw: string): number | string | boolean {
  if (spec.kind === "string") {
    if (raw.length === 0) throw new ConfigError(`--${spec.long} must not be empty`);
    return raw;
  }
  if (spec.kind === "flag") {
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new ConfigError(`--${spec.long} must be true or false`);
  }
  let n: number;
  if (spec.kind === "size") {
    const m = /^(\d+)([kKmMgG]?)$/.exec(raw);
    if (!m) throw new ConfigError(`--${spec.long}: ${JSON.stringify(raw)} is not a size (e.g. 1m, 512k, 2048)`);
    const unit = m[2].toLowerCase();
    n = Number(m[1]) * (unit === "k" ? 1024 : unit === "m" ? MB : unit === "g" ? 1024 * MB : 1);
  } else {
    if (!/^\d+$/.test(raw)) throw new ConfigError(`--${spec.long}: ${JSON.stringify(raw)} is not a whole number`);
    n = Number(raw);
  }
  if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
    throw new ConfigError(`--${spec.long} must be between ${spec.min} and ${spec.max}`);
  }
  return n;
}

export function helpText(): string {
  const lines = ["usage: cacheismo [options]", ""];
  for (const o of OPTIONS) {
    const flags = (o.short ? `-${o.short}, ` : "    ") + `--${o.long}` + (o.kind === "flag" || o.kind === "count" ? "" : " <value>");
    const def = o.kind === "flag" || o.kind === "count" ? "" : ` (default ${o.default})`;
    lines.push(`  ${flags.padEnd(34)} ${o.help}${def}`);
  }
  return lines.join("\n") + "\n";
}
