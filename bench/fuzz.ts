// Protocol fuzzer: random valid requests (bench/robustness/grammar.ts, flush_all of a populated
// cache included), a share of them damaged byte by byte (bench/robustness/mutate.ts), sent over
// several connections in batches cut at random points. Every reply stream must stay well-formed;
// after every batch a control connection reads back a key stored at the start (a flush may have
// taken it: it is stored again); at the end the server must still be up and answer.
// Liveness: a batch with no damaged request must be answered in full (the connection may close
// only at a request meant to close it), and every control read must be answered, each within
// REPLY_DEADLINE_MS; otherwise the run stops and names the batches that went unanswered
// (connection, batch number and requests; the same --seed replays them).
// Exits 1 on any failure.
//
//   bun run bench/fuzz.ts --requests 1000000                # the full run
//   bun run bench/fuzz.ts [--requests N] [--seconds N] [--connections N] [--batch N]
//                         [--seed N] [--mutation-rate 0.25] [--server "<command with {port}>"]
//
// --server defaults to cacheismo (CACHEISMO_BIN when set); try
// --server "memcached -u root -U 0 -l 127.0.0.1 -p {port}" to fuzz the reference.
import { parseArgs } from "node:util";
import { killAllOnSignal } from "./lib/proc.ts";
import { concat } from "./robustness/bytes.ts";
import { describeRequest, McClient, REPLY_DEADLINE_MS } from "./robustness/client.ts";
import { ControlKey } from "./robustness/control.ts";
import { type FlushForm, FlushLog, type FlushWindow } from "./robustness/flush-log.ts";
import { type BatchEnd, FuzzConnection } from "./robustness/fuzz-connection.ts";
import { randomRequest, type Request } from "./robustness/grammar.ts";
import { mutate } from "./robustness/mutate.ts";
import { defaultServerTemplate, type RunningProcess, startServer } from "./robustness/process.ts";
import type { ReplyKind } from "./robustness/reply-check.ts";
import { Rng } from "./robustness/rng.ts";

export interface FuzzOptions {
  requests: number;
  seconds: number;
  connections: number;
  /** Requests per batch (one sentinel and one control check per batch). */
  batch: number;
  seed: number;
  mutationRate: number;
  /** How long the sentinel of a batch with a damaged request may take before the connection is given up. */
  stuckMs: number;
  /** Command with "{port}". */
  server: string;
}

export interface FuzzReport {
  requests: number;
  mutated: number;
  bytesSent: number;
  batches: Record<BatchEnd, number>;
  connections: number;
  replies: Record<ReplyKind, number>;
  /** Replies that were not well-formed memcached replies (must be none). */
  malformed: string[];
  controlChecks: number;
  /** Control reads that did not return the stored value (must be none). */
  controlFailures: string[];
  /** Control reads that missed after a flush that may have acted since the key was stored. */
  controlMissesAfterFlush: number;
  /** Requests with no reply within REPLY_DEADLINE_MS, and the batches that may have caused it (must be none). */
  unanswered: string[];
  flushes: FlushLog;
  serverAlive: boolean;
  /** The control key and a fresh connection's `version` answered after the run. */
  answersAfterRun: boolean;
  maxRssBytes: number;
  elapsedMs: number;
  /** The server's last output lines, when it died. */
  serverLog: string | undefined;
}

export const DEFAULT_OPTIONS: FuzzOptions = {
  requests: 100_000,
  seconds: 600,
  connections: 8,
  batch: 50,
  seed: 1,
  mutationRate: 0.25,
  stuckMs: 250,
  server: defaultServerTemplate(),
};

const CONTROL_KEY: string = "fuzz:control:key";

export function passed(report: FuzzReport): boolean {
  return report.malformed.length === 0 && report.controlFailures.length === 0 && report.unanswered.length === 0 && report.serverAlive && report.answersAfterRun;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const server: RunningProcess = await startServer(options.server, []);
  const started: number = Date.now();
  const report: FuzzReport = {
    requests: 0,
    mutated: 0,
    bytesSent: 0,
    batches: { synced: 0, closed: 0, stuck: 0 },
    connections: 0,
    replies: { simple: 0, value: 0, client_error: 0, server_error: 0, number: 0, version: 0, stat: 0 },
    malformed: [],
    controlChecks: 0,
    controlFailures: [],
    controlMissesAfterFlush: 0,
    unanswered: [],
    flushes: new FlushLog(),
    serverAlive: true,
    answersAfterRun: false,
    maxRssBytes: server.rssBytes(),
    elapsedMs: 0,
    serverLog: undefined,
  };
  try {
    const control: ControlKey = await ControlKey.create(server.port, CONTROL_KEY, report.flushes);
    const run: Run = { options, server, control, report, deadline: started + options.seconds * 1000, inFlight: new Map() };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < options.connections; i++) workers.push(fuzzWorker(i, run));
    await Promise.all(workers);
    report.serverAlive = server.alive();
    if (report.serverAlive && report.unanswered.length === 0) {
      await report.flushes.waitUntilActed();
      try {
        report.answersAfterRun = (await control.check()) && (await answersVersion(server.port));
      } catch (error) {
        report.unanswered.push(`control read after the run (and after every delayed flush acted): ${(error as Error).message}\n${report.flushes.recent(2 * REPLY_DEADLINE_MS)}`);
      }
    }
    report.controlChecks = control.checks;
    report.controlFailures = control.failures;
    report.controlMissesAfterFlush = control.missesAfterFlush;
    control.close();
  } finally {
    report.serverAlive &&= server.alive();
    if (!report.serverAlive) report.serverLog = server.logTail();
    report.elapsedMs = Date.now() - started;
    await server.stop();
  }
  return report;
}

interface Run {
  readonly options: FuzzOptions;
  readonly server: RunningProcess;
  readonly control: ControlKey;
  readonly report: FuzzReport;
  readonly deadline: number;
  /** Each connection's batch from its sending until the control read after it is answered. */
  readonly inFlight: Map<number, Batch>;
}

interface Batch {
  readonly connection: number;
  /** 1-based, per connection: with the same options, --seed replays it. */
  readonly number: number;
  /** The requests as sent. */
  readonly requests: Uint8Array[];
  readonly damaged: boolean[];
  readonly flushes: FlushWindow[];
  /** The last request closes the connection on purpose. */
  closes: boolean;
}

/** One connection's loop: batches until the request budget or the time is used up, the server is gone or stops answering. */
async function fuzzWorker(connection: number, run: Run): Promise<void> {
  const { options, server, control, report } = run;
  const rng = new Rng(options.seed * 1000 + connection);
  let conn: FuzzConnection | undefined;
  for (let number = 1; report.requests < options.requests && Date.now() < run.deadline && server.alive() && report.unanswered.length === 0; number++) {
    if (conn === undefined) {
      try {
        conn = await FuzzConnection.open(server.port);
      } catch {
        break; // refused: the server is gone, which the report will show
      }
      report.connections++;
    }
    const batch: Batch = { connection, number, requests: [], damaged: [], flushes: [], closes: false };
    const forms: FlushForm[] = [];
    for (let i = 0; i < options.batch && report.requests < options.requests; i++) {
      const request: Request = randomRequest(rng);
      report.requests++;
      const damaged: boolean = request.flush === undefined && rng.chance(options.mutationRate);
      if (damaged) report.mutated++;
      batch.requests.push(damaged ? mutate(request.bytes, rng) : request.bytes);
      batch.damaged.push(damaged);
      if (request.flush !== undefined) forms.push(request.flush);
      batch.closes = request.closes;
      if (request.closes) break;
    }
    if (forms.length > 0) await report.flushes.noteItems(server.port);
    const bytes: Uint8Array = concat(batch.requests);
    report.bytesSent += bytes.length;
    run.inFlight.set(connection, batch);
    const sentAt: number = Date.now();
    for (const form of forms) batch.flushes.push(report.flushes.begin(form, sentAt, `connection ${connection} batch ${number}`));
    await conn.sendSplit(bytes, rng);
    // Only a damaged request may leave the server waiting for data; an undamaged batch is owed every reply.
    const clean: boolean = !batch.damaged.includes(true);
    const end: BatchEnd = await conn.finishBatch(clean ? REPLY_DEADLINE_MS : options.stuckMs);
    for (const window of batch.flushes) report.flushes.answered(window, Date.now());
    report.batches[end]++;
    if (end !== "synced" || conn.replies.malformed !== undefined) {
      retire(conn, report);
      conn = undefined;
    }
    if (clean && (end === "stuck" || (end === "closed" && !batch.closes))) {
      const what: string = end === "stuck" ? `no reply within ${REPLY_DEADLINE_MS} ms` : "the server closed the connection before answering";
      report.unanswered.push(`${what} to ${describeBatch(batch)}\n${report.flushes.recent(2 * REPLY_DEADLINE_MS)}`);
      break;
    }
    try {
      await control.check();
    } catch (error) {
      const suspects: string = [...run.inFlight.values()].map(describeBatch).join("\n");
      if (report.unanswered.length === 0) {
        report.unanswered.push(`control read after batch ${number} of connection ${connection}: ${(error as Error).message}\n${report.flushes.recent(2 * REPLY_DEADLINE_MS)}\nbatches not known to be answered:\n${suspects}`);
      }
      break;
    }
    run.inFlight.delete(connection);
    report.maxRssBytes = Math.max(report.maxRssBytes, server.rssBytes());
  }
  if (conn !== undefined) retire(conn, report);
}

function describeBatch(batch: Batch): string {
  const lines: string[] = batch.requests.map((r, i) => `    ${i + 1}. ${describeRequest(r)}${batch.damaged[i] ? " damaged" : ""}`);
  return `connection ${batch.connection} batch ${batch.number} (${batch.requests.length} requests):\n${lines.join("\n")}`;
}

/** Closes a connection and adds its reply counts (and any malformed reply) to the report. */
function retire(conn: FuzzConnection, report: FuzzReport): void {
  conn.close();
  for (const [kind, n] of Object.entries(conn.replies.counts)) report.replies[kind as ReplyKind] += n;
  if (conn.replies.malformed !== undefined) report.malformed.push(`${conn.replies.malformed} (then ${JSON.stringify(conn.replies.leftover())})`);
}

async function answersVersion(port: number): Promise<boolean> {
  try {
    const client: McClient = await McClient.connect(port);
    const reply: string = await client.line("version\r\n");
    client.close();
    return reply.startsWith("VERSION ");
  } catch {
    return false;
  }
}

function parseOptions(argv: string[]): FuzzOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: "string" },
      seconds: { type: "string" },
      connections: { type: "string" },
      batch: { type: "string" },
      seed: { type: "string" },
      "mutation-rate": { type: "string" },
      server: { type: "string" },
    },
  });
  const number = (raw: string | undefined, fallback: number, name: string): number => {
    const n: number = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  const d: FuzzOptions = DEFAULT_OPTIONS;
  return {
    ...d,
    requests: number(values.requests, d.requests, "requests"),
    seconds: number(values.seconds, d.seconds, "seconds"),
    connections: Math.max(1, number(values.connections, d.connections, "connections")),
    batch: Math.max(1, number(values.batch, d.batch, "batch")),
    seed: number(values.seed, d.seed, "seed"),
    mutationRate: number(values["mutation-rate"], d.mutationRate, "mutation-rate"),
    server: values.server ?? d.server,
  };
}

export function formatReport(r: FuzzReport): string {
  const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return [
    `requests            ${r.requests} (${r.mutated} mutated), ${mb(r.bytesSent)} sent in ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `batches             ${r.batches.synced} synced, ${r.batches.closed} closed by the server, ${r.batches.stuck} given up (server waiting for data)`,
    `connections         ${r.connections}`,
    `replies             ${Object.entries(r.replies).map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `malformed replies   ${r.malformed.length}${r.malformed.length ? `: ${r.malformed.slice(0, 3).join("; ")}` : ""}`,
    `flushes             ${r.flushes.summary()}`,
    `control checks      ${r.controlChecks} (${r.controlMissesAfterFlush} misses after a flush), failed ${r.controlFailures.length}${r.controlFailures.length ? `: ${r.controlFailures.slice(0, 3).join("; ")}` : ""}`,
    `unanswered          ${r.unanswered.length ? r.unanswered.join("\n") : "none"}`,
    `server              ${r.serverAlive ? "alive" : "DEAD"}, ${r.answersAfterRun ? "answers" : "DOES NOT ANSWER"} after the run, max RSS ${mb(r.maxRssBytes)}`,
    ...(r.serverLog === undefined ? [] : [`server log:\n${r.serverLog}`]),
  ].join("\n");
}

if (import.meta.main) {
  killAllOnSignal();
  const options: FuzzOptions = parseOptions(Bun.argv.slice(2));
  console.log(`fuzz: ${options.requests} requests, ${options.connections} connections, batch ${options.batch}, seed ${options.seed}, server: ${options.server}`);
  const report: FuzzReport = await runFuzz(options);
  console.log(formatReport(report));
  const ok: boolean = passed(report);
  console.log(ok ? "PASS" : "FAIL");
  process.exit(ok ? 0 : 1);
}
