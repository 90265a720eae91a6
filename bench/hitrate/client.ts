/**
 * One pipelined memcached text-protocol connection that runs replay exchanges: each exchange is
 * a single write of `set`s then `get`s; replies are parsed as they stream in and every hit is
 * checked against the key's expected value, byte for byte.
 */
import type { Socket } from "bun";
import type { Keyspace } from "./keyspace.ts";
import type { CacheUnderTest } from "./replay.ts";

const CR = 13;
const LF = 10;
const END_LINE = Buffer.from("END", "latin1");
const STORED_LINE = Buffer.from("STORED", "latin1");
const VALUE_PREFIX = Buffer.from("VALUE ", "latin1");
/** After a value's data: its CRLF, then the END line that closes a single-key get. */
const VALUE_TRAILER = Buffer.from("\r\nEND\r\n", "latin1");

export interface ReplyProblems {
  /** Hits whose key, flags, length or bytes differ from what was set. */
  corruptHits: number;
  /** Get replies that were neither a value nor END (e.g. SERVER_ERROR). */
  getErrors: number;
  /** Set replies other than STORED (e.g. SERVER_ERROR out of memory storing object). */
  setErrors: number;
  /** The first few problems, described, for the report. */
  readonly samples: string[];
}

const MAX_SAMPLES = 5;

interface Pending {
  readonly sets: Int32Array;
  readonly gets: Int32Array;
  readonly hits: Uint8Array;
  setsDone: number;
  getsDone: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: Timer;
}

export class PipelinedClient implements CacheUnderTest {
  readonly waitsForTime = true;
  readonly problems: ReplyProblems = { corruptHits: 0, getErrors: 0, setErrors: 0, samples: [] };
  private socket: Socket<undefined> | undefined;
  private out: Buffer = Buffer.allocUnsafe(1 << 20);
  private outLength = 0;
  private outWritten = 0;
  private input: Buffer = Buffer.allocUnsafe(1 << 20);
  private inStart = 0;
  private inEnd = 0;
  private pending: Pending | undefined;
  /** Set once the stream can no longer be trusted (closed, desynchronised, timed out). */
  private failure: Error | undefined;

  private constructor(
    private readonly keyspace: Keyspace,
    private readonly exchangeTimeoutMs: number,
  ) {}

  static async connect(port: number, keyspace: Keyspace, exchangeTimeoutMs: number): Promise<PipelinedClient> {
    const client = new PipelinedClient(keyspace, exchangeTimeoutMs);
    client.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => client.receive(chunk),
        drain: () => client.flushOut(),
        close: () => client.fail(new Error("server closed the connection")),
        error: (_s, error) => client.fail(error),
      },
    });
    client.socket.setNoDelay(true);
    return client;
  }

  close(): void {
    this.socket?.end();
  }

  exchange(sets: Int32Array, gets: Int32Array, hits: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error("exchange already in progress"));
    hits.fill(0, 0, gets.length);
    if (sets.length + gets.length === 0) return Promise.resolve();
    this.encode(sets, gets);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new Error(`no complete reply within ${this.exchangeTimeoutMs} ms (${sets.length} sets, ${gets.length} gets)`)),
        this.exchangeTimeoutMs,
      );
      this.pending = { sets, gets, hits, setsDone: 0, getsDone: 0, resolve, reject, timer };
      this.flushOut();
    });
  }

  private encode(sets: Int32Array, gets: Int32Array): void {
    const ks = this.keyspace;
    let bytes = 0;
    for (let i = 0; i < sets.length; i++) bytes += 32 + ks.keyBytes + ks.sizes[sets[i]];
    bytes += gets.length * (6 + ks.keyBytes);
    this.out = ensureCapacity(this.out, 0, bytes);
    const out = this.out;
    let at = 0;
    for (let i = 0; i < sets.length; i++) {
      const key = sets[i];
      at += out.write("set ", at, "latin1");
      at += ks.key(key).copy(out, at);
      at += out.write(` 0 ${ks.ttls[key]} ${ks.sizes[key]}\r\n`, at, "latin1");
      at += ks.value(key).copy(out, at);
      at += out.write("\r\n", at, "latin1");
    }
    for (let i = 0; i < gets.length; i++) {
      at += out.write("get ", at, "latin1");
      at += ks.key(gets[i]).copy(out, at);
      at += out.write("\r\n", at, "latin1");
    }
    this.outLength = at;
    this.outWritten = 0;
  }

  private flushOut(): void {
    while (this.socket && this.outWritten < this.outLength) {
      const n = this.socket.write(this.out, this.outWritten, this.outLength - this.outWritten);
      if (n <= 0) return; // kernel buffer full: drain() calls again
      this.outWritten += n;
    }
  }

  private receive(chunk: Uint8Array): void {
    if (this.failure) return;
    if (!this.pending) {
      this.fail(new Error(`unexpected bytes with no request outstanding: ${JSON.stringify(latin1(chunk, 0, 80))}`));
      return;
    }
    if (this.inStart === this.inEnd) this.inStart = this.inEnd = 0;
    if (this.inEnd + chunk.length > this.input.length) {
      this.input.copyWithin(0, this.inStart, this.inEnd);
      this.inEnd -= this.inStart;
      this.inStart = 0;
      this.input = ensureCapacity(this.input, this.inEnd, chunk.length);
    }
    this.input.set(chunk, this.inEnd);
    this.inEnd += chunk.length;
    try {
      this.parse(this.pending);
    } catch (error) {
      this.fail(error as Error);
    }
  }

  /** Consumes every complete reply in the input; resolves the exchange when all arrived. */
  private parse(p: Pending): void {
    const buf = this.input;
    let at = this.inStart;
    const end = this.inEnd;
    while (p.setsDone < p.sets.length || p.getsDone < p.gets.length) {
      const eol = lineEnd(buf, at, end);
      if (eol < 0) break;
      if (p.setsDone < p.sets.length) {
        if (!bytesEqual(buf, at, eol, STORED_LINE)) {
          this.problems.setErrors++;
          this.sample(`set ${this.keyText(p.sets[p.setsDone])}: ${latin1(buf, at, eol)}`);
        }
        p.setsDone++;
        at = eol + 2;
        continue;
      }
      const key = p.gets[p.getsDone];
      if (bytesEqual(buf, at, eol, END_LINE)) {
        at = eol + 2;
      } else if (startsWith(buf, at, eol, VALUE_PREFIX)) {
        const length = valueLength(buf, at, eol);
        const dataStart = eol + 2;
        if (dataStart + length + VALUE_TRAILER.length > end) {
          // Grow now so the whole reply fits once it arrives.
          this.input = ensureCapacity(this.input, end, dataStart + length + VALUE_TRAILER.length - end);
          break;
        }
        if (!bytesEqual(buf, dataStart + length, dataStart + length + VALUE_TRAILER.length, VALUE_TRAILER)) {
          throw new Error(`reply to get ${this.keyText(key)} lost framing after "${latin1(buf, at, eol)}"`);
        }
        const problem = this.checkHit(key, buf, at, eol, dataStart, length);
        if (problem === undefined) p.hits[p.getsDone] = 1;
        else {
          this.problems.corruptHits++;
          this.sample(`get ${this.keyText(key)}: ${problem}`);
        }
        at = dataStart + length + VALUE_TRAILER.length;
      } else {
        this.problems.getErrors++;
        this.sample(`get ${this.keyText(key)}: ${latin1(buf, at, eol)}`);
        at = eol + 2;
      }
      p.getsDone++;
    }
    this.inStart = at;
    if (p.setsDone === p.sets.length && p.getsDone === p.gets.length) {
      if (this.inStart !== this.inEnd) throw new Error(`extra bytes after the last reply: ${JSON.stringify(latin1(buf, at, Math.min(end, at + 80)))}`);
      clearTimeout(p.timer);
      this.pending = undefined;
      p.resolve();
    }
  }

  /** Why the VALUE reply at [line, eol) with data at [data, data + length) is not key's value, or undefined. */
  private checkHit(key: number, buf: Buffer, line: number, eol: number, data: number, length: number): string | undefined {
    const ks = this.keyspace;
    const header = latin1(buf, line, eol);
    const expectedHeader = `VALUE ${this.keyText(key)} 0 ${ks.sizes[key]}`;
    if (header !== expectedHeader) return `got "${header}", expected "${expectedHeader}"`;
    if (!buf.subarray(data, data + length).equals(ks.value(key))) return `value bytes differ (${length} bytes)`;
    return undefined;
  }

  private keyText(key: number): string {
    return this.keyspace.key(key).toString("latin1");
  }

  private sample(text: string): void {
    if (this.problems.samples.length < MAX_SAMPLES) this.problems.samples.push(text);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.socket?.end();
  }
}

/** A buffer holding `used` bytes of `buf` with room for `extra` more (buf itself when it has room). */
function ensureCapacity(buf: Buffer, used: number, extra: number): Buffer {
  if (used + extra <= buf.length) return buf;
  const grown = Buffer.allocUnsafe(Math.max(used + extra, buf.length * 2));
  buf.copy(grown, 0, 0, used);
  return grown;
}

/** Index of the CR of the first CRLF in [from, end), or -1 when the line is not complete yet. */
function lineEnd(buf: Buffer, from: number, end: number): number {
  const cr = buf.indexOf(CR, from);
  if (cr < 0 || cr + 1 >= end) return -1;
  if (buf[cr + 1] !== LF) throw new Error(`bare CR in reply line "${latin1(buf, from, cr)}"`);
  return cr;
}

/** The <bytes> field of "VALUE <key> <flags> <bytes>[ <cas>]". */
function valueLength(buf: Buffer, line: number, eol: number): number {
  const fields = latin1(buf, line, eol).split(" ");
  const length = Number(fields[3]);
  if (fields.length < 4 || !Number.isInteger(length) || length < 0) throw new Error(`malformed VALUE line "${latin1(buf, line, eol)}"`);
  return length;
}

function bytesEqual(buf: Buffer, from: number, to: number, expected: Buffer): boolean {
  if (to - from !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (buf[from + i] !== expected[i]) return false;
  return true;
}

function startsWith(buf: Buffer, from: number, to: number, prefix: Buffer): boolean {
  return to - from >= prefix.length && bytesEqual(buf, from, from + prefix.length, prefix);
}

function latin1(buf: Uint8Array, from: number, to: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + from, to - from).toString("latin1");
}
