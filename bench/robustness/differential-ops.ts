/**
 * The differential stream's requests: every storage verb (with and without noreply, cas with
 * real and stale uniques), get/gets/gat/gats of one and many keys, delete, incr/decr, touch and
 * flush_all, drawn from a seeded Rng. The generator learns from the replies (cas ids, lengths),
 * so what it draws depends only on the seed and the replies, and a run replays exactly.
 *
 * A cas unique is carried as a canonical id (numbered in order of first appearance in replies,
 * the same on both servers while they agree) and translated to each server's own unique when
 * the request is written.
 */
import { ascii, concat, latin1 } from "./bytes.ts";
import {
  ABSENT_KEY,
  freshKeyState,
  KEYS,
  type KeyState,
  markAbsent,
  markCounted,
  markMaybe,
  markStored,
  TOO_LONG_KEY,
} from "./differential-keys.ts";
import { binaryValue, counterValue, delta, exptime, flags, GROWTH_LIMIT_BYTES, TOO_LARGE_BYTES } from "./differential-values.ts";
import type { Rng } from "./rng.ts";

export type Verb = "set" | "add" | "replace" | "append" | "prepend" | "cas" | "get" | "gets" | "gat" | "gats" | "delete" | "incr" | "decr" | "touch" | "flush_all";
/** What comes back: one line, VALUE blocks up to a last line, or nothing (noreply). */
export type ReplyShape = "line" | "retrieval" | "none";
/** A cas unique: a canonical id seen in replies, or a literal sent as is (stale on both servers). */
export type CasRef = { readonly id: number; readonly literal?: undefined } | { readonly id?: undefined; readonly literal: string };

export interface Op {
  readonly verb: Verb;
  readonly keys: readonly string[];
  readonly shape: ReplyShape;
  /** The command line before the cas unique (all of it when there is none), no CRLF. */
  readonly head: string;
  readonly cas: CasRef | undefined;
  /** The rest of the command line (" noreply"). */
  readonly tail: string;
  readonly data: Uint8Array | undefined;
  /** flush_all with a delay longer than any run: removes nothing meanwhile. */
  readonly delayed: boolean;
}

/** What the generator reads from a reply (the shape bench/robustness/differential-replies.ts parses). */
export interface Observed {
  readonly line: string;
  readonly values: readonly { readonly key: string; readonly value: string; readonly casId: number | undefined }[];
}

const STORAGE: readonly Verb[] = ["set", "add", "replace", "append", "prepend", "cas"];
const WEIGHTS: readonly [Verb, number][] = [
  ["set", 16],
  ["add", 6],
  ["replace", 6],
  ["append", 5],
  ["prepend", 4],
  ["cas", 12],
  ["get", 12],
  ["gets", 14],
  ["gat", 3],
  ["gats", 3],
  ["delete", 6],
  ["incr", 6],
  ["decr", 5],
  ["touch", 4],
  ["flush_all", 0.25],
];
const TOTAL_WEIGHT: number = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);

export function render(op: Op, uniqueOf: (ref: CasRef) => string): Uint8Array {
  const line: string = `${op.head}${op.cas === undefined ? "" : ` ${uniqueOf(op.cas)}`}${op.tail}\r\n`;
  return op.data === undefined ? ascii(line) : concat([ascii(line), op.data, ascii("\r\n")]);
}

/** The request as both servers received it, cas uniques shown as #<canonical id>, escaped and shortened. */
export function describe(op: Op): string {
  const bytes: Uint8Array = render(op, (ref) => (ref.id === undefined ? ref.literal : `#${ref.id}`));
  return escapeBytes(bytes, 160);
}

/** Printable ASCII as is, CR and LF as \r and \n, every other byte as \xHH, in quotes; long ones shortened. */
export function escapeBytes(bytes: Uint8Array | string, limit: number): string {
  const text: string = typeof bytes === "string" ? bytes : latin1(bytes);
  if (text.length <= limit) return quote(text);
  return `${quote(text.slice(0, limit))}... (${text.length} bytes in all, ends ${quote(text.slice(-40))})`;
}

const ESCAPES: Readonly<Record<string, string>> = { "\r": "\\r", "\n": "\\n", '"': '\\"', "\\": "\\\\" };

function quote(text: string): string {
  const escaped: string = text.replace(/[^ -~]|["\\]/g, (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `"${escaped}"`;
}

export class OpGenerator {
  /** What the replies so far say about each key. */
  private readonly settled = new Map<string, KeyState>(KEYS.map((k) => [k, freshKeyState()]));
  /** settled plus the worst case of each request drawn since (their replies are not in yet). */
  private working = new Map<string, KeyState>();
  private maxCasId: number = 0;
  /** A delayed flush_all after an immediate one would bring memcached's flushed items back to life. */
  private flushedNow: boolean = false;

  constructor(private readonly rng: Rng) {
    this.resetWorking();
  }

  next(): Op {
    const op: Op = this.draw();
    apply(this.working, op, undefined);
    return op;
  }

  /** The replies to the requests drawn since the last settle, in order (undefined for noreply). */
  settle(ops: readonly Op[], replies: readonly (Observed | undefined)[]): void {
    for (let i = 0; i < ops.length; i++) {
      apply(this.settled, ops[i], replies[i]);
      for (const value of replies[i]?.values ?? []) this.maxCasId = Math.max(this.maxCasId, value.casId ?? 0);
    }
    this.resetWorking();
  }

  /** One gets of every key the servers must agree on (padded counters left out). */
  finalCheck(): Op {
    return retrievalOp("gets", KEYS.filter((k) => !this.working.get(k)!.padded), "");
  }

  private resetWorking(): void {
    this.working = new Map([...this.settled].map(([k, s]) => [k, { ...s }]));
  }

  private draw(): Op {
    let roll: number = this.rng.next() * TOTAL_WEIGHT;
    for (const [verb, weight] of WEIGHTS) {
      roll -= weight;
      if (roll < 0) return this.drawVerb(verb);
    }
    return this.drawVerb("get");
  }

  private drawVerb(verb: Verb): Op {
    const rng: Rng = this.rng;
    switch (verb) {
      case "get":
      case "gets":
      case "gat":
      case "gats":
        return this.retrieval(verb);
      case "delete": {
        const key: string = rng.chance(0.02) ? TOO_LONG_KEY : rng.pick(KEYS);
        return lineOp(verb, key, `delete ${key}${rng.chance(0.05) ? " 0" : ""}`, this.noreply(key !== TOO_LONG_KEY));
      }
      case "incr":
      case "decr": {
        const countable: string[] = KEYS.filter((k) => !this.working.get(k)!.huge);
        const key: string = rng.chance(0.02) ? TOO_LONG_KEY : countable.length === 0 ? ABSENT_KEY : rng.pick(countable);
        const { token, valid } = delta(rng);
        return lineOp(verb, key, `${verb} ${key} ${token}`, this.noreply(valid && key !== TOO_LONG_KEY));
      }
      case "touch": {
        const key: string = rng.chance(0.02) ? TOO_LONG_KEY : rng.pick(KEYS);
        return lineOp(verb, key, `touch ${key} ${exptime(rng)}`, this.noreply(key !== TOO_LONG_KEY));
      }
      case "flush_all":
        return this.flush();
      default:
        return this.storage(verb);
    }
  }

  private storage(verb: Verb): Op {
    const rng: Rng = this.rng;
    const key: string = rng.pick(KEYS);
    const numeric: boolean = rng.chance(0.3);
    const tooLarge: boolean = rng.chance(0.004);
    let data: Uint8Array;
    if (tooLarge) {
      // Swallowed whole by both servers, a request inside included.
      data = new Uint8Array(TOO_LARGE_BYTES).fill(0x61);
      data.set(ascii("\r\nget k0\r\n"), rng.int(TOO_LARGE_BYTES - 10));
    } else if (numeric) {
      data = verb === "append" || verb === "prepend" ? ascii(String(rng.int(100))) : counterValue(rng);
    } else {
      data = binaryValue(rng);
    }
    if ((verb === "append" || verb === "prepend") && !tooLarge) {
      const state: KeyState = this.working.get(key)!;
      if (state.padded || state.maxLength + data.length > GROWTH_LIMIT_BYTES) verb = "set";
    }
    const cas: CasRef | undefined = verb === "cas" ? this.casRef(key) : undefined;
    const noreply: string = this.noreply(true);
    return {
      verb,
      keys: [key],
      shape: noreply ? "none" : "line",
      head: `${verb} ${key} ${flags(rng)} ${exptime(rng)} ${data.length}`,
      cas,
      tail: noreply,
      data,
      delayed: false,
    };
  }

  /** Mostly the latest id seen for the key (a real unique), else an older one, any other id, or a literal no item has. */
  private casRef(key: string): CasRef {
    const ids: readonly number[] = this.working.get(key)!.casIds;
    const roll: number = this.rng.next();
    if (ids.length > 0 && roll < 0.6) return { id: ids[ids.length - 1] };
    if (ids.length > 1 && roll < 0.75) return { id: ids[this.rng.int(ids.length - 1)] };
    if (this.maxCasId > 0 && roll < 0.9) return { id: this.rng.range(1, this.maxCasId) };
    return { literal: this.rng.pick(["0", String(1e15 + this.rng.int(1e9))]) };
  }

  private retrieval(verb: Verb): Op {
    const rng: Rng = this.rng;
    const count: number = rng.chance(0.7) ? 1 : rng.chance(0.8) ? rng.range(2, 6) : rng.range(7, 40);
    const readable: string[] = KEYS.filter((k) => !this.working.get(k)!.padded);
    const keys: string[] = [];
    for (let i = 0; i < count; i++) keys.push(readable.length === 0 || rng.chance(0.05) ? ABSENT_KEY : rng.pick(readable));
    return retrievalOp(verb, keys, verb === "gat" || verb === "gats" ? ` ${exptime(rng)}` : "");
  }

  private flush(): Op {
    const rng: Rng = this.rng;
    const noreply: string = this.noreply(true);
    const base: Op = { verb: "flush_all", keys: [], shape: noreply ? "none" : "line", head: "", cas: undefined, tail: noreply, data: undefined, delayed: false };
    if (!this.flushedNow && rng.chance(0.3)) return { ...base, head: `flush_all ${rng.range(10 * 86_400, 30 * 86_400)}`, delayed: true };
    this.flushedNow = true;
    return { ...base, head: rng.pick(["flush_all", "flush_all 0"]) };
  }

  private noreply(allowed: boolean): string {
    return allowed && this.rng.chance(0.15) ? " noreply" : "";
  }
}

function lineOp(verb: Verb, key: string, head: string, noreply: string): Op {
  return { verb, keys: [key], shape: noreply ? "none" : "line", head, cas: undefined, tail: noreply, data: undefined, delayed: false };
}

function retrievalOp(verb: Verb, keys: readonly string[], exptime: string): Op {
  return { verb, keys, shape: "retrieval", head: `${verb}${exptime} ${keys.join(" ")}`, cas: undefined, tail: "", data: undefined, delayed: false };
}

/** What `op` answered with `reply` (undefined: not known, so the worst case) says about the keys. */
function apply(states: Map<string, KeyState>, op: Op, reply: Observed | undefined): void {
  if (op.verb === "flush_all") {
    if (!op.delayed) for (const state of states.values()) markAbsent(state);
    return;
  }
  const state: KeyState | undefined = states.get(op.keys[0]);
  const line: string | undefined = reply?.line;
  const length: number = op.data?.length ?? 0;
  const tooLarge: boolean = length >= TOO_LARGE_BYTES;
  switch (op.verb) {
    case "get":
    case "gets":
    case "gat":
    case "gats":
      for (const value of reply?.values ?? []) {
        const seen: KeyState | undefined = states.get(value.key);
        if (seen === undefined) continue;
        markStored(seen, value.value);
        if (value.casId !== undefined && seen.casIds[seen.casIds.length - 1] !== value.casId) seen.casIds.push(value.casId);
      }
      return;
    case "delete":
      if (state !== undefined) markAbsent(state);
      return;
    case "incr":
    case "decr":
      if (state === undefined) return;
      if (line === undefined) markCounted(state, undefined);
      else if (/^\d+$/.test(line)) markCounted(state, line);
      else if (line === "NOT_FOUND") markAbsent(state);
      return;
    case "touch":
      return;
  }
  if (state === undefined || !STORAGE.includes(op.verb)) return;
  if (tooLarge) {
    // memcached unlinks the old item when a set is too large, and keeps it otherwise.
    if (op.verb === "set") markAbsent(state);
    return;
  }
  const appending: boolean = op.verb === "append" || op.verb === "prepend";
  const value: string = latin1(op.data!);
  if (line === undefined) {
    if (op.verb === "set") markStored(state, value);
    else markMaybe(state, value, appending ? state.maxLength + length : length);
  } else if (line === "STORED") {
    if (!appending) markStored(state, value);
    else {
      state.length = state.length === undefined ? undefined : state.length + length;
      state.maxLength += length;
      // Digits added next to digits may make a long number: unknown until the value is read.
      state.huge ||= /\d/.test(value);
    }
  }
}
