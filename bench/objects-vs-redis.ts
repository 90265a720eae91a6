// Lua objects over TCP, side by side with Redis: the same load generator drives cacheismo (memcached
// text protocol, virtual keys) and Debian's redis-server (RESP, native types) in the same run.
//
//   bun run bench/objects-vs-redis.ts [--seconds 2] [--rounds 2] [--connections 32] [--depths 1,16]
//                                     [--threads 1] [--only <substring of case names>] [--base <dir>]
//
// Both servers listen on 127.0.0.1 only and are started and stopped by the bench. Per case and
// pipelining depth, each server gets `--connections` connections with `depth` requests in flight
// on each, for `--seconds`, alternating the two servers for `--rounds` rounds; the table keeps each
// server's best round and the ratio cacheismo / Redis. On a shared machine, trust the ratios more
// than the absolute numbers. With --base, a second cacheismo run from another checkout (e.g. the
// previous commit, `git archive HEAD | tar -x -C <dir>` with node_modules linked) takes its turn in
// every round too, for an old-vs-new comparison under the same load.
//
// Cases (sets and maps of 1K and 100K members, planted before the timed runs):
//   set put/delete  set:put then set:delete of a member of the connection's own (every call
//                   changes the set)         vs SADD / SREM
//   set exist       set:exist of a random member                               vs SISMEMBER
//   map put         map:put of a random field to a new value                   vs HSET
//   map get         map:get of a random field                                  vs HGET
//   quota           quota:addandcheck of the connection's quota                vs EVALSHA of the same quota in Lua
//   plain get       get of a 32-byte value                                     vs GET
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Socket, Subprocess } from "bun";
import { exchange } from "./lib/memcache.ts";
import { freePort, killAll, killAllOnSignal, stop, track } from "./lib/proc.ts";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "2" },
    rounds: { type: "string", default: "2" },
    only: { type: "string", default: "" },
    connections: { type: "string", default: "32" },
    depths: { type: "string", default: "1,16" },
    threads: { type: "string", default: "1" },
    redis: { type: "string", default: "/usr/bin/redis-server" },
    base: { type: "string", default: "" },
  },
});
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const CONNECTIONS = Number(args.connections);
const DEPTHS = args.depths!.split(",").map(Number);
const SIZES = [1_000, 100_000];
const REPO_ROOT = resolve(import.meta.dir, "..");
const QUOTA_LIMIT = "1000000000000000";
/** A setup or check request (stats, a count, a script load) that takes longer has hung. */
const ASK_TIMEOUT_MS = 30_000;

type Protocol = "memcached" | "resp";

/** Counts complete replies in a byte stream. */
interface ReplyCounter {
  /** Returns how many replies `chunk` completed; errors are counted in `errors`. */
  feed(chunk: Uint8Array): number;
  errors: number;
}

const CR = 13;
const LF = 10;

/** memcached: every request is one `get`, whose reply ends with END\r\n (no value here holds it). */
class EndCounter implements ReplyCounter {
  errors = 0;
  /** How much of "END\r\n" (or "SERVER_ERROR") matched at the end of the previous chunk. */
  private matched = 0;
  private static readonly END = [69, 78, 68, CR, LF];

  feed(chunk: Uint8Array): number {
    let n = 0;
    const end = EndCounter.END;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === end[this.matched]) {
        if (++this.matched === end.length) {
          n++;
          this.matched = 0;
        }
      } else this.matched = b === end[0] ? 1 : 0;
      // A SERVER_ERROR ends the reply of its key; the rest of the line's keys are not answered.
      if (b === 83 && chunk[i + 1] === 69 && chunk[i + 2] === 82 && chunk[i + 3] === 86) {
        this.errors++;
        n++;
      }
    }
    return n;
  }
}

/** RESP2: +simple, -error, :integer, $bulk (or $-1), *array of those (EVALSHA answers a bulk or status). */
class RespCounter implements ReplyCounter {
  errors = 0;
  private state: "type" | "line" | "length" | "bulk" = "type";
  private length = 0;
  private bulkLeft = 0;

  feed(chunk: Uint8Array): number {
    let n = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      switch (this.state) {
        case "type":
          if (b === 36) {
            this.state = "length";
            this.length = 0;
          } else {
            if (b === 45) this.errors++;
            this.state = "line";
          }
          break;
        case "line":
          if (b === LF) {
            n++;
            this.state = "type";
          }
          break;
        case "length":
          if (b === 45) this.length = -1;
          else if (b >= 48 && b <= 57) this.length = this.length * 10 + (b - 48);
          else if (b === LF) {
            if (this.length < 0) {
              n++;
              this.state = "type";
            } else {
              this.bulkLeft = this.length + 2;
              this.state = "bulk";
            }
          }
          break;
        case "bulk": {
          const take = Math.min(this.bulkLeft, chunk.length - i);
          this.bulkLeft -= take;
          i += take - 1;
          if (this.bulkLeft === 0) {
            n++;
            this.state = "type";
          }
          break;
        }
      }
    }
    return n;
  }
}

function resp(...words: string[]): string {
  let s = `*${words.length}\r\n`;
  for (const w of words) s += `$${Buffer.byteLength(w)}\r\n${w}\r\n`;
  return s;
}

/** One client connection that keeps `depth` requests in flight while `running`. */
class Driver {
  completed = 0;
  private socket: Socket<undefined> | null = null;
  private pending = "";
  private seq = 0;
  running = false;
  private drained: (() => void) | null = null;
  private waitingFor = 0;

  constructor(
    readonly id: number,
    private readonly counter: ReplyCounter,
  ) {}

  static async connect(port: number, id: number, protocol: Protocol): Promise<Driver> {
    const d = new Driver(id, protocol === "memcached" ? new EndCounter() : new RespCounter());
    d.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => d.onData(chunk),
        drain: () => d.flush(),
      },
    });
    return d;
  }

  get errors(): number {
    return this.counter.errors;
  }

  /** The request generator of the run in progress. */
  next: (conn: number, seq: number) => string = () => "";

  start(depth: number, next: (conn: number, seq: number) => string): void {
    this.next = next;
    this.running = true;
    this.completed = 0;
    let out = "";
    for (let i = 0; i < depth; i++) out += next(this.id, this.seq++);
    this.send(out);
  }

  /** Sends requests (setup) and resolves once all of them are answered. */
  async call(requests: string[]): Promise<void> {
    this.running = false;
    await new Promise<void>((resolve) => {
      this.waitingFor = this.completed + requests.length;
      this.drained = resolve;
      this.send(requests.join(""));
    });
  }

  /** Stops issuing and resolves once every request in flight is answered. */
  stopAndDrain(): Promise<void> {
    this.running = false;
    return new Promise((resolve) => {
      this.waitingFor = -1;
      this.drained = resolve;
      this.onData(new Uint8Array(0));
    });
  }

  close(): void {
    this.socket?.end();
  }

  private inFlight = 0;

  private onData(chunk: Uint8Array): void {
    const n = this.counter.feed(chunk);
    this.completed += n;
    this.inFlight -= n;
    if (this.running && n > 0) {
      let out = "";
      for (let i = 0; i < n; i++) out += this.next(this.id, this.seq++);
      this.send(out);
    } else if (this.drained !== null && (this.waitingFor < 0 ? this.inFlight === 0 : this.completed >= this.waitingFor)) {
      const done = this.drained;
      this.drained = null;
      done();
    }
  }

  private send(text: string): void {
    this.inFlight += countRequests(text);
    this.pending += text;
    this.flush();
  }

  private flush(): void {
    if (this.pending === "" || this.socket === null) return;
    const written = this.socket.write(this.pending);
    this.pending = written >= this.pending.length ? "" : this.pending.slice(written);
  }
}

/** Requests in a batch: memcached `get` lines, or RESP arrays. */
function countRequests(text: string): number {
  let n = 0;
  if (text.startsWith("*")) {
    for (let i = text.indexOf("*"); i >= 0; i = text.indexOf("\r\n*", i + 1)) n++;
  } else {
    for (let i = text.indexOf("get "); i >= 0; i = text.indexOf("\nget ", i + 1)) n++;
  }
  return n;
}

async function connectAll(port: number, protocol: Protocol): Promise<Driver[]> {
  const drivers: Driver[] = [];
  for (let i = 0; i < CONNECTIONS; i++) drivers.push(await Driver.connect(port, i, protocol));
  return drivers;
}

/** Ops per second of all drivers with `depth` in flight each, over SECONDS. */
async function run(drivers: Driver[], depth: number, next: (conn: number, seq: number) => string): Promise<{ rate: number; errors: number }> {
  const errorsBefore = drivers.reduce((s, d) => s + d.errors, 0);
  const started = performance.now();
  for (const d of drivers) d.start(depth, next);
  await Bun.sleep(SECONDS * 1000);
  const ops = drivers.reduce((s, d) => s + d.completed, 0);
  const elapsed = performance.now() - started;
  await Promise.all(drivers.map((d) => d.stopAndDrain()));
  return { rate: (ops / elapsed) * 1000, errors: drivers.reduce((s, d) => s + d.errors, 0) - errorsBefore };
}

/** One request, its whole reply as text (setup and checks). */
function ask(port: number, text: string, done: (reply: string) => boolean): Promise<string> {
  return exchange(port, text, done, ASK_TIMEOUT_MS);
}

async function waitForPort(port: number, proc: Subprocess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`server on ${port} exited with ${proc.exitCode}`);
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error(`nothing listening on ${port}`);
}

const QUOTA_SCRIPT = `
local v = redis.call('HMGET', KEYS[1], 'count', 'limit', 'expiresAt')
local count, limit, expiresAt = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
local n = tonumber(ARGV[1] or '1')
local now = tonumber(redis.call('TIME')[1])
if now >= expiresAt then
  count = 0
  expiresAt = (math.floor(now / 86400) + 1) * 86400
  redis.call('HSET', KEYS[1], 'expiresAt', expiresAt)
end
if count + n > limit then return 'QUOTA_EXCEEDED' end
redis.call('HSET', KEYS[1], 'count', count + n)
return 'QUOTA_OK'`;

interface Case {
  name: string;
  memcached: (conn: number, seq: number) => string;
  resp: (conn: number, seq: number) => string;
}

function random(n: number): number {
  return Math.floor(Math.random() * n);
}

function cases(sha: string): Case[] {
  const list: Case[] = [];
  for (const size of SIZES) {
    const label = size >= 1000 ? `${size / 1000}K` : String(size);
    list.push(
      {
        name: `set put/delete vs SADD/SREM, ${label}`,
        memcached: (c, i) => (i % 2 === 0 ? `get set:put:s${size}:c${c}x${i}\r\n` : `get set:delete:s${size}:c${c}x${i - 1}\r\n`),
        resp: (c, i) => (i % 2 === 0 ? resp("SADD", `s${size}`, `c${c}x${i}`) : resp("SREM", `s${size}`, `c${c}x${i - 1}`)),
      },
      {
        name: `set exist vs SISMEMBER, ${label}`,
        memcached: () => `get set:exist:s${size}:m${random(size)}\r\n`,
        resp: () => resp("SISMEMBER", `s${size}`, `m${random(size)}`),
      },
      {
        name: `map put vs HSET, ${label}`,
        memcached: (c, i) => `get map:put:m${size}:f${random(size)}:v${c}x${i}\r\n`,
        resp: (c, i) => resp("HSET", `m${size}`, `f${random(size)}`, `v${c}x${i}`),
      },
      {
        name: `map get vs HGET, ${label}`,
        memcached: () => `get map:get:m${size}:f${random(size)}\r\n`,
        resp: () => resp("HGET", `m${size}`, `f${random(size)}`),
      },
    );
  }
  list.push(
    { name: "quota:addandcheck vs EVALSHA", memcached: (c) => `get quota:addandcheck:q${c}\r\n`, resp: (c) => resp("EVALSHA", sha, "1", `q${c}`) },
    { name: "plain get (32 B) vs GET", memcached: (c) => `get k${c}\r\n`, resp: (c) => resp("GET", `k${c}`) },
  );
  return list;
}

/** Plants the sets, maps, quotas and plain keys in a cacheismo; returns its arena bytes per set member, by size. */
async function plantMemcached(mc: Driver[], port: number): Promise<number[]> {
  const perMember: number[] = [];
  const value32 = "x".repeat(32);
  for (const size of SIZES) {
    const before = Number(/STAT bytes (\d+)/.exec(await ask(port, "stats\r\n", (r) => r.endsWith("END\r\n")))![1]);
    await mc[0].call([`get set:new:s${size}\r\n`, `get map:new:m${size}\r\n`]);
    for (let start = 0; start < size; start += 1000) {
      const batch: string[] = [];
      for (let i = start; i < Math.min(size, start + 1000); i++) batch.push(`get set:put:s${size}:m${i}\r\n`);
      await mc[0].call(batch);
    }
    const after = Number(/STAT bytes (\d+)/.exec(await ask(port, "stats\r\n", (r) => r.endsWith("END\r\n")))![1]);
    perMember.push((after - before) / size);
    await mc[0].call(Array.from({ length: size }, (_, i) => `get map:put:m${size}:f${i}:v${i}\r\n`));
    const count = await ask(port, `get set:count:s${size}\r\n`, (r) => r.endsWith("END\r\n"));
    if (!count.includes(`\r\n${size}\r\n`)) throw new Error(`set s${size} has the wrong count: ${count}`);
  }
  await mc[0].call(Array.from({ length: CONNECTIONS }, (_, c) => `get quota:new:q${c}:${QUOTA_LIMIT}:day\r\n`));
  for (let c = 0; c < CONNECTIONS; c++) await ask(port, `set k${c} 0 0 32\r\n${value32}\r\n`, (r) => r.endsWith("\r\n"));
  return perMember;
}

/** Plants the same in Redis; returns its quota script's sha and MEMORY USAGE per set member, by size. */
async function plantRedis(redis: Driver[], port: number): Promise<{ sha: string; perMember: number[] }> {
  const perMember: number[] = [];
  for (const size of SIZES) {
    for (let start = 0; start < size; start += 1000) {
      const setArgs = [`s${size}`];
      const mapArgs = [`m${size}`];
      for (let i = start; i < Math.min(size, start + 1000); i++) {
        setArgs.push(`m${i}`);
        mapArgs.push(`f${i}`, `v${i}`);
      }
      await redis[0].call([resp("SADD", ...setArgs), resp("HSET", ...mapArgs)]);
    }
    const usage = await ask(port, resp("MEMORY", "USAGE", `s${size}`, "SAMPLES", "0"), (r) => r.endsWith("\r\n"));
    perMember.push(Number(usage.slice(1).trim()) / size);
  }
  const shaReply = await ask(port, resp("SCRIPT", "LOAD", QUOTA_SCRIPT), (r) => r.endsWith("\r\n") && r.split("\r\n").length >= 3);
  const sha = shaReply.split("\r\n")[1];
  const tomorrow = (Math.floor(Date.now() / 86_400_000) + 1) * 86400;
  await redis[0].call(Array.from({ length: CONNECTIONS }, (_, c) => resp("HSET", `q${c}`, "count", "0", "limit", QUOTA_LIMIT, "expiresAt", String(tomorrow))));
  await redis[0].call(Array.from({ length: CONNECTIONS }, (_, c) => resp("SET", `k${c}`, "x".repeat(32))));
  return { sha, perMember };
}

function startCacheismo(root: string, port: number): Subprocess {
  return track(
    Bun.spawn(
      ["bun", "run", resolve(root, "src/main.ts"), "-p", String(port), "-l", "127.0.0.1", "-m", "512", "-I", "16m", "-e", "-t", args.threads!, "--script-timeout-ms", "5000"],
      { stdin: "ignore", stdout: "ignore", stderr: "inherit" },
    ),
  );
}

function opsPerSecond(rate: number): string {
  return Math.round(rate).toLocaleString("en-US");
}

async function main(): Promise<void> {
  killAllOnSignal();
  const mcPort = freePort();
  const redisPort = freePort();
  const basePort = freePort();
  const cacheismo = startCacheismo(REPO_ROOT, mcPort);
  const base = args.base ? startCacheismo(resolve(args.base), basePort) : null;
  const redis = track(
    Bun.spawn([args.redis!, "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "inherit",
    }),
  );
  try {
    await waitForPort(mcPort, cacheismo);
    await waitForPort(redisPort, redis);
    if (base !== null) await waitForPort(basePort, base);
    const mc = await connectAll(mcPort, "memcached");
    const rd = await connectAll(redisPort, "resp");
    const bs = base === null ? null : await connectAll(basePort, "memcached");
    const mcPerMember = await plantMemcached(mc, mcPort);
    if (bs !== null) await plantMemcached(bs, basePort);
    const { sha, perMember: redisPerMember } = await plantRedis(rd, redisPort);
    const rows: Record<string, string>[] = [];
    for (const depth of DEPTHS) {
      for (const c of cases(sha).filter((c) => c.name.includes(args.only!))) {
        let a = { rate: 0, errors: 0 };
        let b = { rate: 0, errors: 0 };
        let o = { rate: 0, errors: 0 };
        for (let round = 0; round < ROUNDS; round++) {
          const x = await run(mc, depth, c.memcached);
          const y = await run(rd, depth, c.resp);
          const z = bs === null ? { rate: 0, errors: 0 } : await run(bs, depth, c.memcached);
          a = { rate: Math.max(a.rate, x.rate), errors: a.errors + x.errors };
          b = { rate: Math.max(b.rate, y.rate), errors: b.errors + y.errors };
          o = { rate: Math.max(o.rate, z.rate), errors: o.errors + z.errors };
        }
        const row: Record<string, string> = {
          case: c.name,
          "in flight": `${CONNECTIONS}x${depth}`,
          "cacheismo ops/s": opsPerSecond(a.rate),
          "Redis ops/s": opsPerSecond(b.rate),
          ratio: (a.rate / b.rate).toFixed(2),
        };
        if (bs !== null) {
          row["base ops/s"] = opsPerSecond(o.rate);
          row["base ratio"] = (o.rate / b.rate).toFixed(2);
        }
        row.errors = a.errors + b.errors + o.errors === 0 ? "" : `${a.errors}/${b.errors}/${o.errors}`;
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
    console.table(rows);
    SIZES.forEach((size, i) =>
      console.log(
        `set of ${size} members: cacheismo ${mcPerMember[i].toFixed(1)} B/member (arena bytes, room for appends included; ` +
          `the map was planted after this measure), Redis MEMORY USAGE ${redisPerMember[i].toFixed(1)} B/member`,
      ),
    );
    for (const d of [...mc, ...rd, ...(bs ?? [])]) d.close();
  } finally {
    await stop(cacheismo);
    if (base !== null) await stop(base);
    await stop(redis);
    await killAll();
  }
}


await main();
