/**
 * The differential run: the same seeded stream of pipelined requests to Debian's memcached and to
 * cacheismo, in batches of 1-50 requests (sometimes cut at random byte offsets), every reply
 * required to be byte-identical once cas uniques are canonical. Stops at the first divergence
 * and describes it: seed, request index, the requests that led there, both replies.
 */
import { stats } from "../lib/memcache.ts";
import { concat } from "./bytes.ts";
import { KEYS } from "./differential-keys.ts";
import { describe, escapeBytes, type Op, OpGenerator, render } from "./differential-ops.ts";
import type { Reply } from "./differential-replies.ts";
import { type Collected, MEMORY_MB, Side, startMemcached } from "./differential-side.ts";
import { type RunningProcess, startServer } from "./process.ts";
import { Rng } from "./rng.ts";

export interface DifferentialOptions {
  readonly ops: number;
  readonly seconds: number;
  readonly seed: number;
  /** cacheismo's command, with "{port}". */
  readonly server: string;
}

export interface DifferentialReport {
  readonly seed: number;
  /** Requests compared, the final read of every key included. */
  ops: number;
  batches: number;
  bytesSent: number;
  elapsedMs: number;
  /** "<verb> <reply>" -> count (numbers as <n>, retrievals as hit/miss): what the stream exercised. */
  readonly outcomes: Map<string, number>;
  /** The first divergence, described; undefined when the servers agreed throughout. */
  divergence: string | undefined;
}

const MAX_BATCH: number = 50;
const CONTEXT_OPS: number = 20;
const KEY_CONTEXT_OPS: number = 12;
/** Generous: a loaded 2-core machine, and 2 MB values in the stream. */
const REPLY_TIMEOUT_MS: number = 15_000;

export async function runDifferential(options: DifferentialOptions): Promise<DifferentialReport> {
  const started: number = Date.now();
  const report: DifferentialReport = { seed: options.seed, ops: 0, batches: 0, bytesSent: 0, elapsedMs: 0, outcomes: new Map(), divergence: undefined };
  const servers: RunningProcess[] = [];
  const sides: Side[] = [];
  try {
    servers.push(await startMemcached());
    servers.push(await startServer(options.server, ["-m", String(MEMORY_MB)]));
    sides.push(await Side.open("memcached", servers[0]), await Side.open("cacheismo", servers[1]));
    const run = new Run(options, report, sides);
    await run.stream(started + options.seconds * 1000);
    report.divergence ??= await evictions(servers);
  } finally {
    for (const side of sides) side.close();
    await Promise.all(servers.map((s) => s.stop()));
    report.elapsedMs = Date.now() - started;
  }
  return report;
}

class Run {
  private readonly rng: Rng;
  private readonly generator: OpGenerator;
  /** The last requests sent, for the divergence message. */
  private readonly recent: Op[] = [];
  /** The last requests on each key (flush_all counts for every key), numbered. */
  private readonly byKey = new Map<string, [number, Op][]>();

  constructor(
    private readonly options: DifferentialOptions,
    private readonly report: DifferentialReport,
    private readonly sides: readonly Side[],
  ) {
    this.rng = new Rng(options.seed);
    this.generator = new OpGenerator(this.rng);
  }

  async stream(deadline: number): Promise<void> {
    while (this.report.ops < this.options.ops && Date.now() < deadline) {
      const ops: Op[] = [];
      const size: number = Math.min(this.rng.range(1, MAX_BATCH), this.options.ops - this.report.ops);
      for (let i = 0; i < size; i++) ops.push(this.generator.next());
      if (!(await this.batch(ops))) return;
    }
    // A last read of every key, which also catches a reply owed to the last batch's noreply requests.
    await this.batch([this.generator.finalCheck()]);
  }

  /** Sends a batch to both servers, compares the replies; false at a divergence. */
  private async batch(ops: Op[]): Promise<boolean> {
    const [a, b] = this.sides;
    const bytes: Uint8Array[] = this.sides.map((side) => concat(ops.map((op) => render(op, (ref) => side.uniqueOf(ref)))));
    // Cut offsets as fractions, so both servers see their (cas-translated) batch cut alike.
    const cuts: number[] = this.rng.chance(0.3) ? Array.from({ length: this.rng.range(1, 3) }, () => this.rng.next()).sort((x, y) => x - y) : [];
    let from: number[] = [0, 0];
    for (const cut of [...cuts, 1]) {
      const to: number[] = bytes.map((b) => Math.floor(b.length * cut));
      this.sides.forEach((side, i) => side.write(bytes[i].subarray(from[i], to[i])));
      from = to;
      if (this.rng.chance(0.5)) await Bun.sleep(0);
    }
    this.report.bytesSent += bytes[0].length;
    this.report.batches++;
    const deadline: number = Date.now() + REPLY_TIMEOUT_MS;
    const [ra, rb] = await Promise.all([a.collect(ops, deadline), b.collect(ops, deadline)]);
    for (let i = 0; i < ops.length; i++) {
      this.remember(ops[i]);
      const problem: string | undefined = this.compare(ops[i], i, ra, rb);
      if (problem !== undefined) {
        this.report.divergence = this.explain(problem, ra.replies[i], rb.replies[i]);
        return false;
      }
      this.count(ops[i], ra.replies[i]);
      this.report.ops++;
    }
    this.generator.settle(ops, ra.replies);
    return true;
  }

  private compare(op: Op, i: number, ra: Collected, rb: Collected): string | undefined {
    for (const [side, collected] of [
      [this.sides[0], ra],
      [this.sides[1], rb],
    ] as const) {
      if (collected.missing === i) return side.whyMissing(REPLY_TIMEOUT_MS);
    }
    if (op.shape === "none") return undefined;
    return ra.replies[i]!.text === rb.replies[i]!.text ? undefined : "the replies differ";
  }

  private count(op: Op, reply: Reply | undefined): void {
    let outcome: string;
    if (reply === undefined) outcome = "noreply";
    else if (op.shape === "retrieval" && reply.line === "END") outcome = reply.values.length > 0 ? "hit" : "miss";
    else outcome = /^\d+$/.test(reply.line) ? "<n>" : reply.line;
    const key: string = `${op.verb} ${outcome}`;
    this.report.outcomes.set(key, (this.report.outcomes.get(key) ?? 0) + 1);
  }

  private remember(op: Op): void {
    this.recent.push(op);
    if (this.recent.length > CONTEXT_OPS) this.recent.shift();
    for (const key of op.verb === "flush_all" ? KEYS : new Set(op.keys)) {
      const list: [number, Op][] = this.byKey.get(key) ?? [];
      list.push([this.report.ops, op]);
      if (list.length > KEY_CONTEXT_OPS) list.shift();
      this.byKey.set(key, list);
    }
  }

  private explain(problem: string, a: Reply | undefined, b: Reply | undefined): string {
    const first: number = this.report.ops - this.recent.length + 1; // the last one is request #ops
    const shown = (reply: Reply | undefined): string => (reply === undefined ? "(none)" : escapeBytes(reply.text, 600));
    return [
      `divergence at request #${this.report.ops} (seed ${this.options.seed}): ${problem}`,
      `the last ${this.recent.length} requests (cas uniques as #<canonical id>):`,
      ...this.recent.map((op, i) => `  #${first + i} ${describe(op)}`),
      ...[...new Set(this.recent[this.recent.length - 1].keys)].slice(0, 4).flatMap((key) => [
        `the last requests on ${escapeBytes(key, 40)}:`,
        ...(this.byKey.get(key) ?? []).map(([i, op]) => `  #${i} ${describe(op)}`),
      ]),
      `memcached: ${shown(a)}`,
      `cacheismo: ${shown(b)}`,
      `replay: bun run bench/differential.ts --seed ${this.options.seed} --ops ${this.report.ops + 1}`,
    ].join("\n");
  }
}

/** Items evicted on either server make the comparison meaningless: a run must stay far below -m. */
async function evictions(servers: readonly RunningProcess[]): Promise<string | undefined> {
  for (const [name, server] of [
    ["memcached", servers[0]],
    ["cacheismo", servers[1]],
  ] as const) {
    const evicted: string | undefined = (await stats(server.port, 5000)).get("evictions");
    if (evicted !== "0") return `${name} evicted items (stats evictions ${evicted}): the stream holds too much data for -m ${MEMORY_MB}`;
  }
  return undefined;
}
