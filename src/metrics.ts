/**
 * Prometheus exposition: every `stats` line as `cacheismo_<name>`, per-command latency histograms,
 * and the HTTP endpoint (--metrics-port) serving them at /metrics beside /healthz.
 */
import type { Server } from "bun";
import { PeerFamilies } from "./cluster/peer-metrics.ts";
import { COUNTER_NAMES, type StatsSource, statsLines } from "./stats.ts";

/** Commands with their own histogram; every other command name is counted under "other". */
export const HISTOGRAM_COMMANDS = ["get", "set", "add", "replace", "append", "prepend", "cas", "incr", "decr", "touch", "delete", "gat", "other"] as const;
export type HistogramCommand = (typeof HISTOGRAM_COMMANDS)[number];

/** Variants that share a histogram with their base command. */
const ALIASES: Readonly<Record<string, HistogramCommand>> = { gets: "get", gats: "gat" };

/** Upper bounds in seconds: a cache answers in microseconds, a slow script in tens of milliseconds. */
export const DEFAULT_BUCKETS_SECONDS: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

/** Bytes of the shared buffer behind one thread's histograms with these bounds. */
function histogramBytes(bucketsSeconds: readonly number[]): number {
  return HISTOGRAM_COMMANDS.length * (bucketsSeconds.length + 2) * 8;
}

/**
 * Per-command latency histograms. record() sits on the request path, so it allocates nothing:
 * every bucket is a slot in one preallocated Float64Array, found through a fixed name → index map.
 * The slots live in a SharedArrayBuffer: with several threads each records into its own, and
 * the main thread renders their sum.
 */
export class LatencyHistograms {
  private readonly bounds: Float64Array;
  /** Per command: one count per bound, then the +Inf count (not cumulative; render() sums). */
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;
  private readonly index = new Map<string, number>();
  private readonly other: number;

  constructor(
    private readonly bucketsSeconds: readonly number[] = DEFAULT_BUCKETS_SECONDS,
    readonly buffer = new SharedArrayBuffer(histogramBytes(bucketsSeconds)),
  ) {
    this.bounds = Float64Array.from(bucketsSeconds);
    for (let i = 1; i < this.bounds.length; i++) {
      if (!(this.bounds[i] > this.bounds[i - 1])) throw new Error("histogram bounds must increase");
    }
    const countSlots = HISTOGRAM_COMMANDS.length * (this.bounds.length + 1);
    this.counts = new Float64Array(buffer, 0, countSlots);
    this.sums = new Float64Array(buffer, countSlots * 8, HISTOGRAM_COMMANDS.length);
    HISTOGRAM_COMMANDS.forEach((name, i) => this.index.set(name, i));
    for (const [alias, name] of Object.entries(ALIASES)) this.index.set(alias, this.index.get(name)!);
    this.other = this.index.get("other")!;
  }

  /** Counts one `command` (lower-case name as sent) that took `seconds`. */
  record(command: string, seconds: number): void {
    const c = this.index.get(command) ?? this.other;
    const bounds = this.bounds;
    let b = 0;
    while (b < bounds.length && seconds > bounds[b]) b++;
    this.counts[c * (bounds.length + 1) + b]++;
    this.sums[c] += seconds;
  }

  /** Histograms holding the sum of `parts` (threads' histograms with the same bounds) as they are now. */
  static sum(parts: readonly LatencyHistograms[]): LatencyHistograms {
    const total = new LatencyHistograms(parts[0].bucketsSeconds);
    for (const part of parts) {
      for (let i = 0; i < total.counts.length; i++) total.counts[i] += part.counts[i];
      for (let i = 0; i < total.sums.length; i++) total.sums[i] += part.sums[i];
    }
    return total;
  }

  /** Total observations of one histogram (aliases included). */
  count(command: HistogramCommand): number {
    const c = this.index.get(command)!;
    const width = this.bounds.length + 1;
    let total = 0;
    for (let b = 0; b < width; b++) total += this.counts[c * width + b];
    return total;
  }

  /** Prometheus text of the `cacheismo_command_duration_seconds` histogram family. */
  render(): string {
    const name = "cacheismo_command_duration_seconds";
    const width = this.bounds.length + 1;
    const out = [`# HELP ${name} Time from a parsed request to its queued reply, by command.`, `# TYPE ${name} histogram`];
    HISTOGRAM_COMMANDS.forEach((command, c) => {
      let cumulative = 0;
      for (let b = 0; b < width; b++) {
        cumulative += this.counts[c * width + b];
        const le = b < this.bounds.length ? String(this.bounds[b]) : "+Inf";
        out.push(`${name}_bucket{command="${command}",le="${le}"} ${cumulative}`);
      }
      out.push(`${name}_sum{command="${command}"} ${this.sums[c]}`, `${name}_count{command="${command}"} ${cumulative}`);
    });
    return out.join("\n") + "\n";
  }
}

/** Stats that only grow (until `stats reset` or a restart, which Prometheus treats as a reset). */
const COUNTER_STATS: ReadonlySet<string> = new Set([
  ...COUNTER_NAMES.filter((k) => k !== "curr_connections"),
  "total_items",
  "evictions",
  "reclaimed",
  "store_lock_waits",
  "objects_lock_waits",
  "rusage_user",
  "rusage_system",
]);

const NUMBER = /^-?\d+(\.\d+)?$/;

/** `stats` lines as Prometheus metrics; the non-numeric ones (version, ...) become labels of cacheismo_info. */
export function statsToPrometheus(lines: readonly (readonly [string, string | number])[]): string {
  const out: string[] = [];
  const labels: string[] = [];
  const peers = new PeerFamilies();
  for (const [stat, value] of lines) {
    const name = `cacheismo_${stat.replace(/[^a-zA-Z0-9_]/g, "_")}`;
    const text = String(value);
    if (peers.add(stat, text)) continue;
    if (!NUMBER.test(text)) {
      labels.push(`${stat.replace(/[^a-zA-Z0-9_]/g, "_")}="${text.replace(/["\\\n]/g, (ch) => (ch === "\n" ? "\\n" : `\\${ch}`))}"`);
      continue;
    }
    out.push(`# TYPE ${name} ${COUNTER_STATS.has(stat) ? "counter" : "gauge"}`, `${name} ${text}`);
  }
  out.push(...peers.render(), "# TYPE cacheismo_info gauge", `cacheismo_info{${labels.join(",")}} 1`);
  return out.join("\n") + "\n";
}

export interface MetricsOptions {
  hostname: string;
  port: number;
  source: StatsSource;
  /** The histograms to render (each scrape). */
  latency: () => LatencyHistograms;
  /** /healthz answers 200 while this is true, 503 after (e.g. while shutting down). */
  healthy: () => boolean;
}

export interface MetricsServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Serves /metrics and /healthz over HTTP. */
export function startMetrics(options: MetricsOptions): MetricsServer {
  const server: Server<undefined> = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    fetch(request) {
      const path = new URL(request.url).pathname;
      if (path === "/metrics") {
        const body = statsToPrometheus(statsLines(options.source, "") ?? []) + options.latency().render();
        return new Response(body, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
      }
      if (path === "/healthz") {
        return options.healthy() ? new Response("ok\n") : new Response("shutting down\n", { status: 503 });
      }
      return new Response("not found\n", { status: 404 });
    },
  });
  return {
    port: server.port ?? options.port,
    stop: () => server.stop(true),
  };
}
