/**
 * One soak connection: owns a set of record keys and counter keys, runs random operations on
 * them one at a time (so it always knows what the server must hold), now and then reads a key
 * another connection owns, and rarely flushes the whole cache (one flush at a time across all
 * connections, taking the forms of FLUSH_FORMS in turn).
 */
import { ascii, concat, latin1 } from "./bytes.ts";
import type { Item, McClient, Retrieval } from "./client.ts";
import type { FlushForm, FlushLog, FlushWindow } from "./flush-log.ts";
import { encodeRecord } from "./record.ts";
import type { Rng } from "./rng.ts";
import { checkSurvival, type Floor, judgeForeignRead, judgeOwnRead, type KeyState, newKeyState, note, type Tally, type Timing } from "./soak-model.ts";

export interface WorkloadShape {
  recordKeys: number;
  counterKeys: number;
  /** Largest record payload; sizes are log-distributed, most are small. */
  maxPayload: number;
  /** Append/prepend only while the value is shorter than this (then set starts over). */
  maxValue: number;
  /** Share of sets that carry a 2 s exptime. */
  ttlShare: number;
}

export type Op = "get" | "set" | "append" | "prepend" | "cas" | "delete" | "incr" | "decr" | "counter_get" | "foreign_get" | "flush";

const OPS: readonly [number, Op][] = [
  [30, "get"],
  [20, "set"],
  [8, "append"],
  [4, "prepend"],
  [10, "cas"],
  [6, "delete"],
  [6, "incr"],
  [3, "decr"],
  [5, "counter_get"],
  [8, "foreign_get"],
  // Drawn while another flush may still act, it is a get instead.
  [0.05, "flush"],
];
const OP_WEIGHT: number = OPS.reduce((sum, [w]) => sum + w, 0);
const U64: bigint = 1n << 64n;

interface Counter {
  readonly key: string;
  value: bigint | undefined;
  /** When the last request that wrote or returned `value` was answered (ms). */
  seenAt: number;
}

/** What every connection of a soak shares. */
export interface SoakShared {
  readonly port: number;
  readonly tally: Tally;
  /** Every connection's record keys, for foreign reads. */
  readonly everyone: KeyState[];
  readonly flushes: FlushLog;
}

export class SoakWorker {
  readonly ops: Record<Op, number> = { get: 0, set: 0, append: 0, prepend: 0, cas: 0, delete: 0, incr: 0, decr: 0, counter_get: 0, foreign_get: 0, flush: 0 };
  serverErrors: number = 0;
  private readonly own: KeyState[] = [];
  private readonly counters: Counter[] = [];

  constructor(
    readonly id: number,
    private readonly client: McClient,
    private readonly rng: Rng,
    private readonly shape: WorkloadShape,
    private readonly shared: SoakShared,
  ) {
    for (let i = 0; i < shape.recordKeys; i++) this.own.push(newKeyState(`soak:${id}:r${i}`));
    for (let i = 0; i < shape.counterKeys; i++) this.counters.push({ key: `soak:${id}:c${i}`, value: undefined, seenAt: 0 });
    shared.everyone.push(...this.own);
  }

  private get tally(): Tally {
    return this.shared.tally;
  }

  close(): void {
    this.client.close();
  }

  async step(): Promise<void> {
    let roll: number = this.rng.next() * OP_WEIGHT;
    let op: Op = "get";
    for (const [weight, candidate] of OPS) {
      roll -= weight;
      if (roll < 0) {
        op = candidate;
        break;
      }
    }
    if (op === "flush" && this.shared.flushes.quietAfter() >= Date.now()) op = "get";
    this.ops[op]++;
    const state: KeyState = this.rng.pick(this.own);
    const counter: Counter = this.rng.pick(this.counters);
    switch (op) {
      case "get": {
        const [item, read] = await this.retrieveOne(`get ${state.key}\r\n`, state.key);
        return judgeOwnRead(state, item, this.tally, this.shared.flushes, read);
      }
      case "set":
        return this.set(state);
      case "append":
      case "prepend":
        return this.extend(state, op);
      case "cas":
        return this.cas(state);
      case "delete":
        return this.remove(state);
      case "incr":
      case "decr":
        return this.delta(counter, op);
      case "counter_get":
        return this.readCounter(counter);
      case "foreign_get":
        return this.foreignRead();
      case "flush":
        return this.flush(this.shared.flushes.nextForm());
    }
  }

  /** A single-key retrieval, with when it was sent and answered. */
  private async retrieveOne(request: string, key: string): Promise<[Item | undefined, Timing]> {
    const sentAt: number = Date.now();
    const reply: Retrieval = await this.client.retrieve(request);
    return [only(reply, key, this.tally), { sentAt, answeredAt: Date.now() }];
  }

  /** One flush_all; the noreply forms are followed by `version`, whose reply shows the flush was read. */
  private async flush(form: FlushForm): Promise<void> {
    // Opened before the item count is read, so no other connection starts a flush meanwhile.
    const window: FlushWindow = this.shared.flushes.begin(form, Date.now(), `connection ${this.id}`);
    await this.shared.flushes.noteItems(this.shared.port);
    const reply: string = await this.client.line(form.noreply ? `${form.line}\r\nversion\r\n` : `${form.line}\r\n`);
    this.shared.flushes.answered(window, Date.now());
    if (form.noreply ? !reply.startsWith("VERSION ") : reply !== "OK") note(this.tally, "unexpected", `${form.line}${form.noreply ? " then version" : ""}: ${reply}`);
  }

  private async set(state: KeyState): Promise<void> {
    const version: number = state.version + 1;
    const record: Uint8Array = encodeRecord(state.key, version, this.rng.logLength(this.shape.maxPayload));
    const flags: number = this.rng.int(2 ** 32);
    const exptime: number = this.rng.chance(this.shape.ttlShare) ? 2 : 0;
    const reply: string = await this.client.line(storage(`set ${state.key} ${flags} ${exptime}`, record));
    if (reply === "STORED") return adopt(state, version, record, flags);
    if (reply.startsWith("SERVER_ERROR")) return this.resync(state, reply);
    note(this.tally, "unexpected", `set ${state.key}: ${reply}`);
  }

  private async extend(state: KeyState, verb: "append" | "prepend"): Promise<void> {
    if (state.value === undefined || state.value.length >= this.shape.maxValue) return this.set(state);
    const version: number = state.version + 1;
    const record: Uint8Array = encodeRecord(state.key, version, this.rng.logLength(this.shape.maxPayload));
    const sentAt: number = Date.now();
    const reply: string = await this.client.line(storage(`${verb} ${state.key} 0 0`, record));
    if (reply === "STORED") {
      checkSurvival(this.shared.flushes, state.seenAt, sentAt, this.tally, `${verb} to ${state.key} version ${state.version}`);
      const value: Uint8Array = verb === "append" ? concat([state.value, record]) : concat([record, state.value]);
      return adopt(state, version, value, state.flags);
    }
    if (reply === "NOT_STORED") return gone(state, this.tally);
    if (reply.startsWith("SERVER_ERROR")) return this.resync(state, reply);
    note(this.tally, "unexpected", `${verb} ${state.key}: ${reply}`);
  }

  private async cas(state: KeyState): Promise<void> {
    const [item, read] = await this.retrieveOne(`gets ${state.key}\r\n`, state.key);
    judgeOwnRead(state, item, this.tally, this.shared.flushes, read);
    if (item === undefined || item.cas === undefined) return;
    const version: number = state.version + 1;
    const record: Uint8Array = encodeRecord(state.key, version, this.rng.logLength(this.shape.maxPayload));
    const reply: string = await this.client.line(storage(`cas ${state.key} ${item.flags} 0`, record, ` ${item.cas}`));
    if (reply === "STORED") return adopt(state, version, record, item.flags);
    if (reply === "NOT_FOUND") return gone(state, this.tally);
    if (reply.startsWith("SERVER_ERROR")) return this.resync(state, reply);
    note(this.tally, "unexpected", `cas ${state.key} (no other writer): ${reply}`);
  }

  private async remove(state: KeyState): Promise<void> {
    const reply: string = await this.client.line(`delete ${state.key}\r\n`);
    if (reply === "NOT_FOUND" && state.value !== undefined) this.tally.misses++;
    if (reply !== "DELETED" && reply !== "NOT_FOUND") note(this.tally, "unexpected", `delete ${state.key}: ${reply}`);
    state.version++;
    state.value = undefined;
  }

  /** After a write failed with SERVER_ERROR (what became of the old value is the server's choice): delete, so the state is known again. */
  private async resync(state: KeyState, reply: string): Promise<void> {
    this.serverErrors++;
    await this.remove(state);
    if (this.tally.examples.length < 10) this.tally.examples.push(`note: ${state.key}: ${reply}`);
  }

  private async delta(counter: Counter, verb: "incr" | "decr"): Promise<void> {
    if (counter.value === undefined) {
      const start: bigint = BigInt(this.rng.int(2 ** 40));
      const reply: string = await this.client.line(storage(`set ${counter.key} 0 0`, ascii(String(start))));
      if (reply === "STORED") {
        counter.value = start;
        counter.seenAt = Date.now();
      } else if (!reply.startsWith("SERVER_ERROR")) note(this.tally, "unexpected", `set ${counter.key}: ${reply}`);
      return;
    }
    // Now and then a delta near 2^64, so incr wraps (to a small number: memcached 1.6.18 may call
    // a counter of 2^63 or more non-numeric, as its strtoull check reads past the value) and decr clamps at 0.
    const before: bigint = counter.value;
    const huge: boolean = this.rng.chance(0.05);
    const amount: bigint = !huge ? BigInt(this.rng.int(1_000_000)) : verb === "incr" ? (U64 - before + BigInt(this.rng.int(1000))) % U64 : U64 - 1n;
    const expected: bigint = verb === "incr" ? (before + amount) % U64 : before > amount ? before - amount : 0n;
    const sentAt: number = Date.now();
    const reply: string = await this.client.line(`${verb} ${counter.key} ${amount}\r\n`);
    if (reply === "NOT_FOUND") {
      counter.value = undefined;
      this.tally.misses++;
      return;
    }
    if (!/^\d+$/.test(reply)) return note(this.tally, "unexpected", `${verb} ${counter.key} ${amount}: ${reply}`);
    if (BigInt(reply) !== expected) note(this.tally, "corrupt", `${verb} ${counter.key} ${amount} on ${before}: got ${reply}, expected ${expected}`);
    checkSurvival(this.shared.flushes, counter.seenAt, sentAt, this.tally, `${verb} ${counter.key}`);
    counter.value = BigInt(reply);
    counter.seenAt = Date.now();
  }

  private async readCounter(counter: Counter): Promise<void> {
    const [item, read] = await this.retrieveOne(`get ${counter.key}\r\n`, counter.key);
    this.tally.reads++;
    if (item === undefined) {
      if (counter.value !== undefined) this.tally.misses++;
      counter.value = undefined;
      return;
    }
    this.tally.hits++;
    // memcached pads a shrunken counter with spaces in place; the number is what counts.
    const text: string = latin1(item.value).trimEnd();
    if (counter.value === undefined || !/^\d+$/.test(text) || BigInt(text) !== counter.value) {
      note(this.tally, counter.value === undefined ? "lostWrites" : "corrupt", `get ${counter.key}: ${JSON.stringify(text.slice(0, 40))}, expected ${counter.value ?? "a miss"}`);
      counter.value = /^\d+$/.test(text) ? BigInt(text) : undefined;
    } else {
      checkSurvival(this.shared.flushes, counter.seenAt, read.sentAt, this.tally, `get ${counter.key}`);
    }
    counter.seenAt = read.answeredAt;
  }

  private async foreignRead(): Promise<void> {
    const state: KeyState = this.rng.pick(this.shared.everyone);
    const floor: Floor = { version: state.version, seenAt: state.value === undefined ? undefined : state.seenAt };
    const [item, read] = await this.retrieveOne(`get ${state.key}\r\n`, state.key);
    judgeForeignRead(state.key, floor, item, this.tally, this.shared.flushes, read);
  }
}

function storage(head: string, data: Uint8Array, casUnique: string = ""): Uint8Array {
  return concat([ascii(`${head} ${data.length}${casUnique}\r\n`), data, ascii("\r\n")]);
}

/** Records an acknowledged write, just answered. */
function adopt(state: KeyState, version: number, value: Uint8Array, flags: number): void {
  state.version = version;
  state.value = value;
  state.flags = flags;
  state.seenAt = Date.now();
}

/** A write found the key absent: it was evicted, expired or flushed (a miss, not an error). */
function gone(state: KeyState, tally: Tally): void {
  if (state.value !== undefined) tally.misses++;
  state.value = undefined;
}

/** The one item a single-key retrieval returned, if any; anything else is noted as unexpected. */
function only(reply: Retrieval, key: string, tally: Tally): Item | undefined {
  if (reply.error !== undefined) {
    note(tally, "unexpected", `get ${key}: ${reply.error}`);
    return undefined;
  }
  if (reply.items.length > 1 || (reply.items.length === 1 && reply.items[0].key !== key)) {
    note(tally, "unexpected", `get ${key}: returned ${reply.items.map((i) => i.key).join(", ")}`);
  }
  return reply.items.find((i) => i.key === key);
}
