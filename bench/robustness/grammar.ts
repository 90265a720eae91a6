/**
 * Valid memcached text requests, drawn at random: every storage, retrieval, delta, touch and
 * delete form (noreply included), a few stats and verbosity lines, and now and then a line of
 * garbage, an over-long line or quit, and rarely a flush_all (every form of bench/robustness/
 * flush-log.ts), so flushes meet a populated cache. Keys come from a small pool so commands hit
 * each other's items; shutdown and version are never drawn (`version` is the fuzzer's sentinel).
 */
import { ascii, concat } from "./bytes.ts";
import { FLUSH_FORMS, type FlushForm } from "./flush-log.ts";
import type { Rng } from "./rng.ts";

const KEY_POOL: number = 300;
const COUNTER_POOL: number = 30;
/** Bytes of the largest value drawn (64 KB; sizes are log-distributed, so most are small). */
const MAX_VALUE: number = 64 * 1024;

export interface Request {
  readonly bytes: Uint8Array;
  /** The request ends the connection on purpose (quit, or a line memcached closes on). */
  readonly closes: boolean;
  /** Set for flush_all: the fuzzer sends it undamaged, to know when it may empty the cache. */
  readonly flush?: FlushForm;
}

type Generator = (rng: Rng) => Request;

const line = (text: string): Request => ({ bytes: ascii(`${text}\r\n`), closes: false });

function key(rng: Rng): string {
  if (rng.chance(0.97)) return `k${rng.int(KEY_POOL)}`;
  // Odd keys: high bytes and control characters (never space, CR or LF), up to 260 bytes.
  const bytes: number[] = [];
  const n: number = rng.range(1, 260);
  for (let i = 0; i < n; i++) {
    let b: number = rng.int(256);
    if (b === 32 || b === 13 || b === 10) b = 120;
    bytes.push(b);
  }
  return String.fromCharCode(...bytes);
}

const counterKey = (rng: Rng): string => `n${rng.int(COUNTER_POOL)}`;
const flags = (rng: Rng): number => (rng.chance(0.8) ? rng.int(100) : rng.int(2 ** 32));
const exptime = (rng: Rng): number => (rng.chance(0.9) ? 0 : rng.pick([1, 2, 100, 2592000, 2592001, -1]));
const noreply = (rng: Rng): string => (rng.chance(0.1) ? " noreply" : "");

function storage(rng: Rng): Request {
  const verb: string = rng.pick(["set", "set", "set", "add", "replace", "append", "prepend", "cas"]);
  const numeric: boolean = rng.chance(0.15);
  const k: string = numeric ? counterKey(rng) : key(rng);
  const value: Uint8Array = numeric ? ascii(String(rng.int(1_000_000))) : rng.bytes(rng.logLength(MAX_VALUE));
  const cas: string = verb === "cas" ? ` ${rng.int(1000)}` : "";
  const head: string = `${verb} ${k} ${flags(rng)} ${exptime(rng)} ${value.length}${cas}${noreply(rng)}\r\n`;
  return { bytes: concat([ascii(head), value, ascii("\r\n")]), closes: false };
}

function retrieval(rng: Rng): Request {
  const verb: string = rng.pick(["get", "get", "get", "gets", "gat", "gats"]);
  const count: number = rng.chance(0.9) ? rng.range(1, 4) : rng.logLength(200);
  const keys: string[] = [];
  for (let i = 0; i < Math.max(count, 1); i++) keys.push(rng.chance(0.1) ? counterKey(rng) : key(rng));
  const touch: string = verb.startsWith("gat") ? ` ${exptime(rng)}` : "";
  return line(`${verb}${touch} ${keys.join(" ")}`);
}

const delta: Generator = (rng) =>
  line(`${rng.pick(["incr", "decr"])} ${rng.chance(0.8) ? counterKey(rng) : key(rng)} ${rng.chance(0.9) ? rng.int(1000) : rng.int(2 ** 52)}${noreply(rng)}`);
const touch: Generator = (rng) => line(`touch ${key(rng)} ${exptime(rng)}${noreply(rng)}`);
const remove: Generator = (rng) => line(`delete ${key(rng)}${rng.chance(0.1) ? " 0" : ""}${noreply(rng)}`);
const stats: Generator = (rng) => line(rng.pick(["stats", "stats settings", "stats items", "stats slabs"]));
const verbosity: Generator = (rng) => line(`verbosity ${rng.int(3)}${noreply(rng)}`);
const quit: Generator = () => ({ ...line("quit"), closes: true });
const flush: Generator = (rng) => {
  const form: FlushForm = rng.pick(FLUSH_FORMS);
  return { ...line(form.line), flush: form };
};

/** A line of random bytes: mostly an unknown command, sometimes longer than 2048 bytes with no newline. */
function garbage(rng: Rng): Request {
  if (rng.chance(0.1)) return { bytes: rng.bytes(rng.range(2049, 8192)).map((b) => (b === 10 ? 120 : b)), closes: true };
  return { bytes: concat([rng.bytes(rng.logLength(300)).map((b) => (b === 10 ? 120 : b)), ascii("\r\n")]), closes: false };
}

const WEIGHTED: readonly [number, Generator][] = [
  [30, storage],
  [35, retrieval],
  [10, delta],
  [6, touch],
  [10, remove],
  [1, stats],
  [1, verbosity],
  [0.2, quit],
  [2, garbage],
  [0.05, flush],
];
const TOTAL_WEIGHT: number = WEIGHTED.reduce((sum, [w]) => sum + w, 0);

export function randomRequest(rng: Rng): Request {
  let roll: number = rng.next() * TOTAL_WEIGHT;
  for (const [weight, generate] of WEIGHTED) {
    roll -= weight;
    if (roll < 0) return generate(rng);
  }
  return storage(rng);
}
