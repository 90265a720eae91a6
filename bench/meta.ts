// Meta-protocol throughput: mg/ms against memcached's and cacheismo's, and cacheismo's mg/ms
// against its own get/set, all through the same client (no external load generator speaks meta).
//
//   bun run bench/meta.ts [--seconds N] [--rounds N] [--connections N] [--keys N] [--only <text>]
//
// --only <text>: just the runs whose name contains <text> (e.g. `cacheismo`).
//
// Each of --connections (default 32) connections sends one request and waits for its reply
// (non-pipelined): 9 gets to 1 set, uniformly random keys of 32 bytes over a window of --keys
// (default 32,000, all stored before timing starts), 32-byte values. Runs, each on a fresh server
// at -t 1 pinned to core 0 with this client on core 1, in an order reversed every other round:
//   memcached mg/ms, cacheismo mg/ms, cacheismo get/set, memcached get/set, and memcaslap's get/set
//   against memcached (same mix, connections and sizes) as a check that this client is not the
//   bottleneck: its memcached get/set should be close to memcaslap's. The client's own CPU share
//   over each run is printed too: well below 100 % means it waited on the server.
// The table keeps each run's best round. Every get must hit and every reply must be well formed,
// or the run is flagged.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Socket } from "bun";
import { runMemaslap } from "./lib/memaslap.ts";
import { freePort, killAll, killAllOnSignal, spawnLogged, stop, waitForMemcache } from "./lib/proc.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const KEY_BYTES = 32;
const VALUE_BYTES = 32;
const SET_EVERY = 10; // 9:1 gets:sets
const SERVER_CORE = "0";
const CLIENT_CORE = "1";
const STARTUP_TIMEOUT_MS = 15_000;

const enum Protocol {
  Meta,
  Classic,
}

interface Target {
  name: string;
  protocol: Protocol;
  /** argv with "{port}"; memcaslap runs instead of this client when `memcaslap` is set. */
  command: string[];
  memcaslap?: boolean;
}

const MEMCACHED = ["/usr/bin/memcached", "-u", "root", "-l", "127.0.0.1", "-p", "{port}", "-m", "64", "-t", "1"];
const CACHEISMO = ["bun", "run", "src/main.ts", "-p", "{port}", "-m", "64", "-t", "1"];
const TARGETS: Target[] = [
  { name: "memcached mg/ms", protocol: Protocol.Meta, command: MEMCACHED },
  { name: "cacheismo mg/ms", protocol: Protocol.Meta, command: CACHEISMO },
  { name: "cacheismo get/set", protocol: Protocol.Classic, command: CACHEISMO },
  { name: "memcached get/set", protocol: Protocol.Classic, command: MEMCACHED },
  { name: "memcached get/set (memcaslap)", protocol: Protocol.Classic, command: MEMCACHED, memcaslap: true },
];

interface Result {
  opsPerSec: number;
  gets: number;
  misses: number;
  /** Replies that were neither a hit, a miss nor a stored. */
  errors: number;
  /** This client's CPU time over the run's wall time (near 1: the client is the bottleneck). */
  clientCpu: number | undefined;
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Every request of the run, built before timing starts: [key][get, set]. */
function buildRequests(protocol: Protocol, keys: number): { gets: Uint8Array[]; sets: Uint8Array[] } {
  const value = "v".repeat(VALUE_BYTES);
  const gets: Uint8Array[] = [];
  const sets: Uint8Array[] = [];
  for (let i = 0; i < keys; i++) {
    const key = `k${String(i).padStart(KEY_BYTES - 1, "0")}`;
    gets.push(ascii(protocol === Protocol.Meta ? `mg ${key} v\r\n` : `get ${key}\r\n`));
    sets.push(ascii(protocol === Protocol.Meta ? `ms ${key} ${VALUE_BYTES}\r\n${value}\r\n` : `set ${key} 0 0 ${VALUE_BYTES}\r\n${value}\r\n`));
  }
  return { gets, sets };
}

const enum Reply {
  Incomplete,
  Hit,
  Miss,
  Stored,
  Error,
}

/**
 * Frames one reply at buf[from, to) and tells what it is; `end` is where it ends. Handles
 * `VA <n> …` + data, `VALUE <key> <flags> <n>` + data + `END`, and the one-line replies.
 */
class ReplyParser {
  end = 0;

  parse(buf: Uint8Array, from: number, to: number): Reply {
    let eol = from;
    while (eol < to && buf[eol] !== 10) eol++;
    if (eol === to) return Reply.Incomplete;
    const c0 = buf[from];
    const c1 = buf[from + 1];
    if (c0 === 86 /* V */) {
      // VA <n> or VALUE <key> <flags> <n>: the length is token 1 or 3.
      const isVA = buf[from + 2] === 32;
      let i = from;
      for (let spaces = isVA ? 1 : 3; spaces > 0; i++) if (buf[i] === 32) spaces--;
      let n = 0;
      while (buf[i] >= 48 && buf[i] <= 57) n = n * 10 + buf[i++] - 48;
      let end = eol + 1 + n + 2;
      if (!isVA) end += 5; // END\r\n
      if (end > to) return Reply.Incomplete;
      this.end = end;
      return Reply.Hit;
    }
    this.end = eol + 1;
    if (c0 === 69 /* E */ && c1 === 78 /* N */) return Reply.Miss; // EN, END
    if ((c0 === 72 /* H */ && c1 === 68) /* HD */ || (c0 === 83 /* S */ && c1 === 84) /* STORED */) return Reply.Stored;
    return Reply.Error;
  }
}

/** One non-pipelined connection: a request, its reply, the next request. */
class Connection {
  ops = 0;
  gets = 0;
  misses = 0;
  errors = 0;
  running = false;
  private socket: Socket<undefined> | null = null;
  private readonly pending = new Uint8Array(64 * 1024);
  private pendingLength = 0;
  private readonly parser = new ReplyParser();
  private rand: number;
  private unwritten: Uint8Array | null = null;

  constructor(
    private readonly requests: { gets: Uint8Array[]; sets: Uint8Array[] },
    seed: number,
  ) {
    this.rand = seed | 1;
  }

  async connect(port: number): Promise<void> {
    this.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => this.receive(chunk),
        drain: () => this.drain(),
      },
    });
    this.socket.setNoDelay(true);
  }

  start(): void {
    this.running = true;
    this.send();
  }

  close(): void {
    this.socket?.end();
  }

  private send(): void {
    // xorshift32: a key and whether this op is a set.
    let x = this.rand;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rand = x;
    const r = x >>> 0;
    const key = r % this.requests.gets.length;
    const isSet = (r >>> 20) % SET_EVERY === 0;
    if (!isSet) this.gets++;
    this.write(isSet ? this.requests.sets[key] : this.requests.gets[key]);
  }

  private write(bytes: Uint8Array): void {
    const n = this.socket!.write(bytes);
    if (n < bytes.length) this.unwritten = bytes.subarray(Math.max(0, n));
  }

  private drain(): void {
    const rest = this.unwritten;
    if (rest === null) return;
    this.unwritten = null;
    this.write(rest);
  }

  private receive(chunk: Uint8Array): void {
    let buf = chunk;
    let to = chunk.length;
    if (this.pendingLength > 0) {
      this.pending.set(chunk, this.pendingLength);
      this.pendingLength += chunk.length;
      buf = this.pending;
      to = this.pendingLength;
    }
    const kind = this.parser.parse(buf, 0, to);
    if (kind === Reply.Incomplete) {
      if (buf === chunk) {
        this.pending.set(chunk, 0);
        this.pendingLength = chunk.length;
      }
      return;
    }
    if (this.parser.end !== to) this.errors++; // non-pipelined: a reply is all there is
    this.pendingLength = 0;
    this.ops++;
    if (kind === Reply.Miss) this.misses++;
    else if (kind === Reply.Error) this.errors++;
    if (this.running) this.send();
  }
}

/** Stores every key of the window before timing starts (pipelined, noreply, then `version`). */
async function prefill(port: number, keys: number): Promise<void> {
  const value = "v".repeat(VALUE_BYTES);
  let text = "";
  for (let i = 0; i < keys; i++) text += `set k${String(i).padStart(KEY_BYTES - 1, "0")} 0 0 ${VALUE_BYTES} noreply\r\n${value}\r\n`;
  text += "version\r\n";
  const { promise, resolve: done, reject } = Promise.withResolvers<void>();
  let reply = "";
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_s, chunk) => {
        reply += Buffer.from(chunk).toString("latin1");
        if (reply.includes("VERSION ")) done();
        else if (reply.length > 0 && !reply.startsWith("V")) reject(new Error(`prefill answered ${JSON.stringify(reply.slice(0, 100))}`));
      },
      drain: (s) => flush(s),
    },
  });
  const bytes = ascii(text);
  let at = 0;
  const flush = (s: Socket<undefined>): void => {
    while (at < bytes.length) {
      const n = s.write(bytes.subarray(at));
      if (n <= 0) return;
      at += n;
    }
  };
  flush(socket);
  await promise;
  socket.end();
}

async function drive(port: number, protocol: Protocol, connections: number, keys: number, seconds: number): Promise<Result> {
  await prefill(port, keys);
  const requests = buildRequests(protocol, keys);
  const conns = Array.from({ length: connections }, (_, i) => new Connection(requests, 0x9e3779b9 * (i + 1)));
  await Promise.all(conns.map((c) => c.connect(port)));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const c of conns) c.start();
  await Bun.sleep(seconds * 1000);
  for (const c of conns) c.running = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sum = (f: (c: Connection) => number): number => conns.reduce((s, c) => s + f(c), 0);
  const result = { opsPerSec: Math.round(sum((c) => c.ops) / elapsed), gets: sum((c) => c.gets), misses: sum((c) => c.misses), errors: sum((c) => c.errors), clientCpu: (cpu.user + cpu.system) / 1e6 / elapsed };
  await Bun.sleep(50); // the last replies in flight
  for (const c of conns) c.close();
  return result;
}

async function measure(target: Target, options: Options, workDir: string): Promise<Result> {
  const port = freePort();
  const logPath = join(workDir, "server.log");
  const argv = ["taskset", "-c", SERVER_CORE, ...target.command.map((w) => w.replaceAll("{port}", String(port)))];
  const proc = spawnLogged(argv, logPath, REPO_ROOT);
  try {
    await waitForMemcache(proc, port, logPath, STARTUP_TIMEOUT_MS);
    if (!target.memcaslap) return await drive(port, target.protocol, options.connections, options.keys, options.seconds);
    const load = { valueBytes: VALUE_BYTES, keyBytes: KEY_BYTES, setRatio: 1 / SET_EVERY, keysPerGet: 1, connections: options.connections };
    const r = await runMemaslap(port, load, options.seconds, join(workDir, "memaslap.cfg"), 1, Number(CLIENT_CORE));
    return { opsPerSec: r.opsPerSec, gets: r.clientGets, misses: r.clientGetMisses, errors: r.anomalies + r.verifyFailed, clientCpu: undefined };
  } finally {
    await stop(proc);
  }
}

interface Options {
  seconds: number;
  rounds: number;
  connections: number;
  keys: number;
  only: string;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      seconds: { type: "string", default: "5" },
      rounds: { type: "string", default: "2" },
      connections: { type: "string", default: "32" },
      keys: { type: "string", default: "32000" },
      only: { type: "string", default: "" },
    },
  });
  const counts = { seconds: Number(values.seconds), rounds: Number(values.rounds), connections: Number(values.connections), keys: Number(values.keys) };
  for (const [name, v] of Object.entries(counts)) if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return { ...counts, only: values.only };
}

/** Pins this process, all its threads, to the client core (servers are pinned when spawned). */
function pinSelf(): void {
  const r = Bun.spawnSync(["taskset", "-a", "-c", "-p", CLIENT_CORE, String(process.pid)], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`taskset failed: ${r.stderr.toString()}`);
}

const fmt = (n: number): string => n.toLocaleString("en-US");
const ratio = (a: number | undefined, b: number | undefined): string => `${((a ?? 0) / (b ?? 1)).toFixed(2)}×`;

async function main(): Promise<void> {
  const options = parseOptions();
  killAllOnSignal();
  pinSelf();
  const workDir = mkdtempSync(join(tmpdir(), "cacheismo-meta-bench-"));
  console.log(`# Meta throughput: ${options.connections} connections, non-pipelined, 9:1 get:set, ${KEY_BYTES} B keys over ${fmt(options.keys)}, ${VALUE_BYTES} B values, ${options.seconds} s per run, best of ${options.rounds}`);
  console.log(`# servers -t 1 on core ${SERVER_CORE}, client on core ${CLIENT_CORE}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
  const targets = TARGETS.filter((t) => t.name.includes(options.only));
  const best = new Map<string, Result>();
  const flagged: string[] = [];
  try {
    for (let round = 1; round <= options.rounds; round++) {
      const order = round % 2 === 1 ? targets : [...targets].reverse();
      for (const target of order) {
        process.stderr.write(`  round ${round} ${target.name} ... `);
        const r = await measure(target, options, workDir);
        process.stderr.write(`${fmt(r.opsPerSec)} ops/s\n`);
        if (r.misses > 0 || r.errors > 0) flagged.push(`${target.name} round ${round}: ${r.misses} misses of ${r.gets} gets, ${r.errors} bad replies`);
        if ((best.get(target.name)?.opsPerSec ?? -1) < r.opsPerSec) best.set(target.name, r);
      }
    }
  } finally {
    await killAll();
    rmSync(workDir, { recursive: true, force: true });
  }
  const ops = (name: string): number | undefined => best.get(name)?.opsPerSec;
  const cpuOf = (name: string): string => {
    const c = best.get(name)?.clientCpu;
    return c === undefined ? "n/a" : `${Math.round(c * 100)}%`;
  };
  console.log("| run | ops/s | client CPU |");
  console.log("|---|---:|---:|");
  for (const t of targets) console.log(`| ${t.name} | ${fmt(ops(t.name) ?? 0)} | ${cpuOf(t.name)} |`);
  console.log("");
  const ratios: [string, string, string][] = [
    ["cacheismo mg/ms ÷ memcached mg/ms", "cacheismo mg/ms", "memcached mg/ms"],
    ["cacheismo mg/ms ÷ cacheismo get/set", "cacheismo mg/ms", "cacheismo get/set"],
    ["memcached mg/ms ÷ memcached get/set", "memcached mg/ms", "memcached get/set"],
    ["client check, this client's memcached get/set ÷ memcaslap's", "memcached get/set", "memcached get/set (memcaslap)"],
  ];
  for (const [label, a, b] of ratios) if (best.has(a) && best.has(b)) console.log(`- ${label}: ${ratio(ops(a), ops(b))}`);
  for (const f of flagged) console.log(`- FLAGGED ${f}`);
}

await main();
