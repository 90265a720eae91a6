/**
 * The memcached text protocol for one connection: bytes in, replies into an OutputBuffer.
 *
 * Requests may arrive split at any byte or many per packet. A data event is parsed in place;
 * only an incomplete tail is copied into `pending` to wait for more bytes. Keys and values are
 * never turned into strings: they go from the input bytes to the store and from the store to
 * the output buffer.
 */
import type { AuthTable } from "../auth.ts";
import { copyBytes } from "../bytes.ts";
import { ReplyKind } from "../cluster/reply-shape.ts";
import type { ClusterRouter } from "../cluster/router.ts";
import type { ForwardingSession } from "../cluster/session.ts";
import type { Config } from "../config.ts";
import { parseCounter } from "../decimal.ts";
import { neverInline } from "../jit.ts";
import { latin1Bytes, latin1Equals, latin1String } from "../latin1.ts";
import type { Counters, StatsSource } from "../stats.ts";
import { statsLines } from "../stats.ts";
import { HEADER_BYTES, KEY_MAX_BYTES } from "../store/item.ts";
import { DeltaResult, PEEK_NEEDS_LOCK, type Store, StoreMode, StoreResult } from "../store/store.ts";
import { PROTOCOL_VERSION } from "../version.ts";
import { AdminCommands } from "./admin.ts";
import { type MetaHost, MetaCommands } from "./meta.ts";
import { OutputBuffer } from "./output.ts";
import * as R from "./replies.ts";

/** memcached closes a connection whose line has no newline after this many bytes (unless get). */
const MAX_LINE_BYTES = 2048;
/** A multiget line may be longer; this bounds it (10,000 keys of 250 bytes fit). */
const MAX_GET_LINE_BYTES = 4 * 1024 * 1024;
const MAX_TOKENS = 24;
/** Leading spaces memcached skips before deciding whether a long line is a multiget. */
const MAX_LEADING_SPACES = 100;

/** What a connection's protocol needs from the server. */
export interface ProtocolContext {
  readonly store: Store;
  readonly counters: Counters;
  readonly config: Config;
  readonly stats: StatsSource;
  /** Runs a virtual key (`type:method:key:…`); null when the key is an ordinary key. Set at start. */
  virtualKey: ((key: string) => Uint8Array | Promise<Uint8Array> | null) | null;
  /**
   * Serves the common calls of the bundled objects from the key's bytes straight into the output:
   * 0 a VALUE block written, n > 0 an error line of n bytes written, -1 not one (virtualKey then).
   */
  nativeKey?: ((buf: Uint8Array, k: number, klen: number, out: OutputBuffer) => number) | null;
  /** With --cluster: who owns which key, and the way to forward requests to them. */
  readonly router: ClusterRouter | null;
  /** The part of a key that decides its owner: a virtual key routes by its object key. Set at start. */
  routingKey: ((key: string) => string) | null;
  /** Per-command latency, when metrics are on. */
  readonly latency: LatencyRecorder | null;
  /** With --auth-file: the accepted credentials; connections start unauthenticated. */
  readonly auth: AuthTable | null;
  /** flush_all: now (0) or after a delay; either replaces a pending delayed flush. */
  flushAll(delaySeconds: number): void;
  /** Bytes made that are garbage once answered (a virtual key's reply), for the server's collections. */
  madeGarbage(bytes: number): void;
  shutdown(): void;
}

export interface LatencyRecorder {
  record(command: string, seconds: number): void;
}

const enum Lookup {
  Ok,
  Failed,
  Async,
}

export const enum Step {
  /** The request was handled; parsing continues at `next`. */
  Done,
  /** The request is not complete yet; wait for more bytes. */
  NeedMore,
  /** The connection must close after flushing what is queued. */
  Close,
  /**
   * Parsing stops and goes on at `next` later: when a forwarded reply has come, or (a multiget
   * stopped midway, `next` its own line) when the output has room or other connections had a turn.
   */
  Wait,
}

/** frameData: the data block has not all come yet. */
export const DATA_INCOMPLETE = -1;
/** frameData: the data block does not end in CRLF. */
export const DATA_BAD_CHUNK = -2;

const COMMAND_NAMES = ["get", "set", "gets", "add", "replace", "append", "prepend", "cas", "incr", "decr", "touch", "delete", "gat", "gats"] as const;

/** A reply part that is an error line (SERVER_ERROR, CLIENT_ERROR) rather than VALUE blocks. */
function isErrorLine(part: Uint8Array): boolean {
  return part.length > 0 && part[0] !== 86; /* V */
}

/**
 * Replies piled up in one data event past this many bytes are handed to the socket before parsing
 * goes on: a pipeline of large gets would otherwise grow `out` to the whole batch's replies (2 MiB
 * for the hit-ratio bench's 100 gets of up to 100 KB), and `out` never shrinks.
 */
const OUTPUT_WRITE_BYTES = 256 * 1024;

/** VALUE blocks in order, then END; or the first error line alone, which answers the request. */
function assemble(parts: readonly Uint8Array[]): Uint8Array {
  const error = parts.find(isErrorLine);
  if (error !== undefined) return error;
  const out = new OutputBuffer(4096);
  for (const part of parts) out.put(part);
  out.put(R.R_END);
  return out.bytes.subarray(0, out.length);
}

function assembleRetrieval(parts: (Uint8Array | Promise<Uint8Array>)[]): Promise<Uint8Array> {
  return Promise.all(parts).then(assemble, (e: unknown) => latin1Bytes(`SERVER_ERROR ${(e as Error).message ?? e}\r\n`));
}

/**
 * Where the next LF in buf[from, end) is, or -1. A plain loop: a data event is usually one short
 * request, and Buffer#indexOf's native call costs more than scanning its few bytes.
 */
function newlineAt(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === 10) return i;
  return -1;
}

export function hasColon(buf: Uint8Array, k: number, klen: number): boolean {
  for (let i = k, end = k + klen; i < end; i++) if (buf[i] === 58) return true;
  return false;
}

/** Resolves (to null: no reply) on a later turn of the event loop, after pending socket events. */
function nextTurn(): Promise<null> {
  return new Promise((resolve) => setImmediate(resolve, null));
}

export class TextProtocol implements MetaHost {
  readonly out = new OutputBuffer();
  /** Set when the connection should close once `out` is flushed. */
  closing = false;
  /** Set when parsing stopped because `out` reached --max-conn-buffer; `resume` goes on. */
  blocked = false;
  /**
   * Set while parsing waits: for a virtual key's later reply, for other connections to go first
   * (this one used its Lua time), or for one of its forwarded requests to be answered (it has as
   * many out as it may).
   */
  waiting = false;
  /** Called when replies have arrived or the turn has come, and parsing may go on (the server flushes). */
  onWake: (() => void) | null = null;
  /** Hands what of `out` may go now to the socket (the server's write), in the middle of a data event. */
  onOutputGrown: (() => void) | null = null;
  /** `out` length at which parsing hands the replies so far to the socket (see OUTPUT_WRITE_BYTES). */
  private writeAt = OUTPUT_WRITE_BYTES;
  /**
   * Bytes at the end of `out` not to send yet: the reply so far of a multiget stopped to let other
   * connections go first. A virtual key failing later still replaces them with its error line.
   */
  held = 0;
  /** With --cluster: the forwarded requests and where their replies go. */
  private readonly session: ForwardingSession | null;
  /** Parsing waits because the session has as many forwarded requests out as it may. */
  private forwardsFull = false;
  /**
   * Set while this connection holds the store lock across the plain keys of one retrieval
   * (lookupInto takes it, releaseStore gives it back): one lock hold per request, not per key.
   */
  private storeHeld = false;
  /** A failed peek's find left for the locked read (Store.peekedForBump), and its readBegin token. */
  private peekedForBump = 0;
  private peekToken = 0;
  /** With --cluster: the owner of each key of the retrieval being handled, in order. */
  private keyOwners = new Int32Array(32);
  private lineStart = 0;
  private lineEnd = 0;
  private authenticated: boolean;
  /** Length of the error line a failed virtual key left at the end of the output. */
  private errorLength = 0;
  /** The reply of the virtual key lookupInto just found to answer later. */
  private asyncPart: Promise<Uint8Array> | null = null;
  private readonly scratch = new OutputBuffer(1024);
  private pending = new Uint8Array(0);
  private pendingLength = 0;
  /** Bytes of a refused data block still to discard. */
  swallowLeft = 0;
  /** The current line's tokens (the meta commands read them too). */
  readonly starts = new Int32Array(MAX_TOKENS);
  readonly ends = new Int32Array(MAX_TOKENS);
  ntokens = 0;
  /** The retrieval key walk (firstKey/nextKey): the current key and where the walk is. */
  private keyStart = 0;
  private keyEnd = 0;
  private keyToken = 0;
  /** Where the request after the current one starts. */
  next = 0;
  /** Milliseconds spent in virtual keys since the connection last let other connections go first. */
  private luaMs = 0;
  /**
   * A multiget stopped midway (stopGet), its line kept at the start of `pending`: where its key walk
   * goes on, relative to the line, or -1 when there is none; and what resumeGet needs to go on.
   */
  private stoppedKeyAt = -1;
  private stoppedLineEnd = 0;
  private stoppedNext = 0;
  private stoppedWithCas = false;
  private stoppedTouch = false;
  private stoppedExptime = 0;

  /** Input received and not yet handled. */
  get pendingBytes(): number {
    return this.pendingLength;
  }

  /** Nothing started and unfinished: no partial request, no forwarded request, no unsent reply. */
  get idle(): boolean {
    return this.pendingLength === 0 && !this.unanswered && this.out.length === 0;
  }

  /** Replies owed: parsing waits, or forwarded replies are still to come. */
  get unanswered(): boolean {
    return this.waiting || (this.session !== null && this.session.unanswered > 0);
  }

  /** Bytes at the start of `out` that may be sent now. */
  get sendable(): number {
    const ready = this.out.length - this.held;
    return this.session === null ? ready : Math.min(ready, this.session.sendable);
  }

  /** The first n bytes of `out` were sent. */
  consume(n: number): void {
    this.out.consume(n);
    this.session?.consumed(n);
    this.writeAt = this.out.length + OUTPUT_WRITE_BYTES;
  }

  private readonly meta: MetaCommands;
  private readonly admin: AdminCommands;

  constructor(private readonly ctx: ProtocolContext) {
    this.meta = new MetaCommands(ctx, this);
    this.admin = new AdminCommands(ctx.store, this);
    this.authenticated = ctx.auth === null;
    this.session = ctx.router === null ? null : ctx.router.session(this.out);
    if (this.session !== null) this.session.onSettled = () => this.settled();
  }

  /** Parses as many requests of `chunk` (after any pending bytes) as output room allows. */
  feed(chunk: Uint8Array): void {
    if (this.closing) return;
    if (this.waiting) {
      this.append(chunk, 0, chunk.length);
      return;
    }
    if (this.pendingLength === 0) {
      const used = this.parse(chunk, chunk.length);
      if (used < chunk.length) this.keep(chunk, used, chunk.length);
      return;
    }
    this.append(chunk, 0, chunk.length);
    this.resume();
  }

  /** Continues with input held back by backpressure. */
  resume(): void {
    if (this.closing || this.waiting) return;
    if (this.pendingLength === 0) {
      this.blocked = false;
      return;
    }
    const buf = this.pending;
    const used = this.parse(buf, this.pendingLength);
    buf.copyWithin(0, used, this.pendingLength);
    this.pendingLength -= used;
  }

  private keep(src: Uint8Array, from: number, to: number): void {
    this.pendingLength = 0;
    this.append(src, from, to);
  }

  private append(src: Uint8Array, from: number, to: number): void {
    const need = this.pendingLength + (to - from);
    if (need > this.pending.length) {
      const grown = new Uint8Array(Math.max(need, this.pending.length * 2, 4096));
      copyBytes(this.pending, 0, this.pendingLength, grown, 0);
      this.pending = grown;
    }
    copyBytes(src, from, to, this.pending, this.pendingLength);
    this.pendingLength = need;
  }

  /** Handles complete requests in buf[0, end); returns how many bytes were used. */
  private parse(buf: Uint8Array, end: number): number {
    let pos = 0;
    const limit = this.ctx.config.maxConnBufferBytes;
    const luaBudgetMs = this.ctx.config.scriptTimeoutMs;
    this.blocked = false;
    while (pos < end) {
      if (this.swallowLeft > 0) {
        const n = Math.min(this.swallowLeft, end - pos);
        this.swallowLeft -= n;
        pos += n;
        continue;
      }
      if (this.out.length >= this.writeAt) {
        // A data event's replies go out as they pile up, not all at its end: what the kernel's
        // socket buffer takes need not sit in `out`, which keeps its size.
        this.writeAt = this.out.length + OUTPUT_WRITE_BYTES;
        this.onOutputGrown?.();
      }
      if (this.out.length >= limit) {
        this.blocked = true; // backpressure: the rest waits until the socket drains
        break;
      }
      if (this.luaMs >= luaBudgetMs) {
        this.yieldTurn(); // a pipeline of slow virtual keys: let other connections go first
        this.blocked = true;
        break;
      }
      let step: Step;
      if (this.stoppedKeyAt >= 0) step = this.resumeGet(buf, pos);
      else {
        const nl = newlineAt(buf, pos, end);
        if (nl < 0) {
          if (this.lineTooLong(buf, pos, end)) this.closing = true;
          break;
        }
        step = this.request(buf, pos, nl, end);
      }
      if (step === Step.NeedMore) break;
      if (step === Step.Close) {
        this.closing = true;
        return end;
      }
      pos = this.next;
      if (step === Step.Wait) {
        this.blocked = true;
        break;
      }
    }
    return pos;
  }

  private lineTooLong(buf: Uint8Array, pos: number, end: number): boolean {
    const len = end - pos;
    if (len <= MAX_LINE_BYTES) return false;
    // As memcached: only a multiget ("get " or "gets ", after at most 100 spaces) may be longer.
    let at = pos;
    while (at < end && at - pos <= MAX_LEADING_SPACES && buf[at] === 32) at++;
    const isGet =
      at - pos <= MAX_LEADING_SPACES &&
      buf[at] === 103 &&
      buf[at + 1] === 101 &&
      buf[at + 2] === 116 &&
      (buf[at + 3] === 32 || (buf[at + 3] === 115 && buf[at + 4] === 32));
    return !isGet || len > MAX_GET_LINE_BYTES;
  }

  /** One request whose line is buf[pos, nl]. Sets this.next when done. */
  private request(buf: Uint8Array, pos: number, nl: number, end: number): Step {
    const latency = this.ctx.latency;
    if (latency === null) return this.dispatch(buf, pos, nl, end);
    const t0 = performance.now();
    const step = this.dispatch(buf, pos, nl, end);
    latency.record(this.commandName(buf), (performance.now() - t0) / 1000);
    return step;
  }

  /** The current request's command as one of the constant names (for metrics), else "other". */
  private commandName(buf: Uint8Array): string {
    if (this.ntokens > 0) for (const name of COMMAND_NAMES) if (this.is(buf, 0, name)) return name;
    return "other";
  }

  private dispatch(buf: Uint8Array, pos: number, nl: number, end: number): Step {
    this.next = nl + 1;
    this.lineStart = pos;
    this.tokenize(buf, pos, nl > pos && buf[nl - 1] === 13 ? nl - 1 : nl);
    const out = this.out;
    if (this.ntokens === 0) {
      // As memcached 1.6.45: a line of spaces is malformed, an empty one unknown.
      out.put(this.lineEnd > pos && buf[pos] === 32 ? R.R_BAD_FORMAT : R.R_ERROR);
      return Step.Done;
    }
    if (!this.authenticated && !this.is(buf, 0, "set")) {
      if (this.is(buf, 0, "quit")) return Step.Close;
      out.put(R.R_UNAUTHENTICATED);
      return Step.Done;
    }
    const s = this.starts[0];
    const len = this.ends[0] - s;
    const c0 = buf[s];
    switch (len) {
      case 2:
        if (c0 === 109) return this.meta.dispatch(buf, nl, end); // mg ms md ma mn me
        break;
      case 3:
        if (c0 === 103 && buf[s + 1] === 101 && buf[s + 2] === 116) return this.get(buf, false, false); // get
        if (c0 === 115 && buf[s + 1] === 101 && buf[s + 2] === 116) return this.update(buf, nl, end, StoreMode.Set); // set
        if (c0 === 97 && buf[s + 1] === 100 && buf[s + 2] === 100) return this.update(buf, nl, end, StoreMode.Add); // add
        if (c0 === 99 && buf[s + 1] === 97 && buf[s + 2] === 115) return this.update(buf, nl, end, StoreMode.Cas); // cas
        if (c0 === 103 && buf[s + 1] === 97 && buf[s + 2] === 116) return this.get(buf, false, true); // gat
        if (this.is(buf, 0, "lru")) return this.admin.lru(buf);
        break;
      case 4:
        if (this.is(buf, 0, "gets")) return this.get(buf, true, false);
        if (this.is(buf, 0, "incr")) return this.delta(buf, true);
        if (this.is(buf, 0, "decr")) return this.delta(buf, false);
        if (this.is(buf, 0, "gats")) return this.get(buf, true, true);
        if (this.is(buf, 0, "quit")) return Step.Close;
        break;
      case 5:
        if (this.is(buf, 0, "touch")) return this.touch(buf);
        if (this.is(buf, 0, "stats")) return this.stats(buf);
        if (this.is(buf, 0, "slabs")) return this.admin.slabs(buf);
        break;
      case 6:
        if (this.is(buf, 0, "delete")) return this.remove(buf);
        if (this.is(buf, 0, "append")) return this.update(buf, nl, end, StoreMode.Append);
        break;
      case 7:
        if (this.is(buf, 0, "replace")) return this.update(buf, nl, end, StoreMode.Replace);
        if (this.is(buf, 0, "prepend")) return this.update(buf, nl, end, StoreMode.Prepend);
        if (this.is(buf, 0, "version")) {
          out.putAscii(`VERSION ${PROTOCOL_VERSION}\r\n`);
          return Step.Done;
        }
        break;
      case 8:
        if (this.is(buf, 0, "shutdown")) return this.shutdown();
        break;
      case 9:
        if (this.is(buf, 0, "flush_all")) return this.flushAll(buf);
        if (this.is(buf, 0, "verbosity")) return this.verbosity(buf);
        break;
      case 11:
        if (this.is(buf, 0, "lru_crawler")) return this.admin.lruCrawler(buf);
        break;
    }
    // As memcached: an HTTP request line (a browser's cross-protocol request) closes the connection.
    if (this.startsWith(buf, this.ntokens - 1, "HTTP/")) return Step.Close;
    out.put(R.R_ERROR);
    return Step.Done;
  }

  /**
   * Splits the line buf[pos, end) on spaces into at most MAX_TOKENS tokens (runs of spaces
   * collapse) and sets lineEnd. memcached reads the line as a C string: a NUL byte ends it.
   */
  private tokenize(buf: Uint8Array, pos: number, end: number): void {
    const starts = this.starts;
    const ends = this.ends;
    let n = 0;
    let i = pos;
    while (n < MAX_TOKENS) {
      while (i < end && buf[i] === 32) i++;
      if (i >= end || buf[i] === 0) break;
      starts[n] = i;
      let c = buf[i];
      while (c !== 32 && c !== 0 && ++i < end) c = buf[i];
      ends[n++] = i;
    }
    this.ntokens = n;
    if (n === MAX_TOKENS) while (i < end && buf[i] !== 0) i++; // the rest of a long multiget line
    this.lineEnd = i < end ? i : end;
  }

  /** Starts walking the keys of a retrieval line at token `firstToken`. */
  private firstKey(firstToken: number): void {
    this.keyToken = firstToken;
    this.keyEnd = this.ends[MAX_TOKENS - 1];
  }

  /**
   * Moves to the line's next key, buf[keyStart, keyEnd); false when there is none. A line of
   * more than MAX_TOKENS words goes on past the tokens by scanning.
   */
  private nextKey(buf: Uint8Array): boolean {
    const t = this.keyToken;
    if (t < this.ntokens) {
      this.keyStart = this.starts[t];
      this.keyEnd = this.ends[t];
      this.keyToken = t + 1;
      return true;
    }
    if (this.ntokens < MAX_TOKENS) return false;
    const end = this.lineEnd;
    let i = this.keyEnd;
    while (i < end && buf[i] === 32) i++;
    if (i >= end) return false;
    this.keyStart = i;
    while (i < end && buf[i] !== 32) i++;
    this.keyEnd = i;
    return true;
  }

  /** Whether nextKey would find another key. */
  private moreKeys(buf: Uint8Array): boolean {
    if (this.keyToken < this.ntokens) return true;
    if (this.ntokens < MAX_TOKENS) return false;
    for (let i = this.keyEnd; i < this.lineEnd; i++) if (buf[i] !== 32) return true;
    return false;
  }

  private startsWith(buf: Uint8Array, token: number, prefix: string): boolean {
    const s = this.starts[token];
    if (this.ends[token] - s < prefix.length) return false;
    for (let i = 0; i < prefix.length; i++) if (buf[s + i] !== prefix.charCodeAt(i)) return false;
    return true;
  }

  private is(buf: Uint8Array, token: number, word: string): boolean {
    return latin1Equals(buf, this.starts[token], this.ends[token], word);
  }

  /** Whether the request has min to max tokens; when not, answers ERROR as memcached does. */
  private arity(min: number, max: number): boolean {
    if (this.ntokens >= min && this.ntokens <= max) return true;
    this.out.put(R.R_ERROR);
    return false;
  }

  private noreply(buf: Uint8Array): boolean {
    return this.is(buf, this.ntokens - 1, "noreply");
  }

  // ---- retrieval ----

  private get(buf: Uint8Array, withCas: boolean, touch: boolean): Step {
    const out = this.out;
    let exptime = 0;
    let first = 1;
    if (!this.arity(2, MAX_TOKENS)) return Step.Done;
    if (touch) {
      exptime = parseExptime(buf, this.starts[1], this.ends[1]);
      if (Number.isNaN(exptime)) {
        out.put(R.R_BAD_EXPTIME);
        return Step.Done;
      }
      first = 2;
    }
    // Check every key first: one bad key makes the whole request an error.
    const router = this.ctx.router;
    let remote = false;
    let keyCount = 0;
    this.firstKey(first);
    while (this.nextKey(buf)) {
      const k = this.keyStart;
      const klen = this.keyEnd - k;
      if (klen > KEY_MAX_BYTES) {
        out.put(R.R_BAD_FORMAT);
        return Step.Done;
      }
      if (router !== null) {
        const owner = this.ownerOf(buf, k, klen);
        if (keyCount === this.keyOwners.length) this.growKeyOwners();
        this.keyOwners[keyCount++] = owner;
        if (owner !== router.selfIndex) remote = true;
      }
    }
    if (remote) return this.routedGet(buf, first, keyCount, withCas, touch, exptime);
    this.firstKey(first);
    return this.getKeys(buf, withCas, touch, exptime);
  }

  /**
   * Answers a local retrieval's keys from where the key walk is. Stops after a key when the output
   * has reached --max-conn-buffer or the connection has used its Lua time (stopGet), so that one
   * line can neither buffer a reply of any size nor hold other connections back.
   */
  private getKeys(buf: Uint8Array, withCas: boolean, touch: boolean, exptime: number): Step {
    const out = this.out;
    // Where the part of the reply that a failing virtual key replaces starts: what is not sent.
    const start = out.length - this.held;
    this.held = 0;
    const limit = this.ctx.config.maxConnBufferBytes;
    const luaBudgetMs = this.ctx.config.scriptTimeoutMs;
    // Set once a virtual key answers later (a script waiting on other nodes): from then on every
    // key's reply is collected as a part and the whole reply is assembled when all have arrived.
    let parts: (Uint8Array | Promise<Uint8Array>)[] | null = null;
    const scratch = this.scratch;
    try {
      while (this.nextKey(buf)) {
        scratch.length = 0;
        const result = this.lookupInto(parts === null ? out : scratch, buf, this.keyStart, this.keyEnd - this.keyStart, withCas, touch, exptime);
        if (result === Lookup.Async) {
          if (parts === null) {
            parts = [out.bytes.slice(start, out.length)];
            out.length = start;
          } else parts.push(scratch.bytes.slice(0, scratch.length));
          parts.push(this.asyncPart!);
        } else if (parts !== null) {
          parts.push(scratch.bytes.slice(0, scratch.length));
        } else if (result === Lookup.Failed) {
          // A failed script answers the whole request with its error line, as memcached ends a
          // request on an error: an END after it would be read as the next request's reply.
          out.bytes.copyWithin(start, out.length - this.errorLength, out.length);
          out.length = start + this.errorLength;
          return Step.Done;
        }
        if (parts === null && (out.length >= limit || this.luaMs >= luaBudgetMs) && this.moreKeys(buf)) return this.stopGet(start, withCas, touch, exptime);
      }
    } finally {
      this.releaseStore();
    }
    if (parts !== null) {
      this.deliver(assembleRetrieval(parts));
      return Step.Wait;
    }
    out.put(R.R_END);
    return Step.Done;
  }

  /**
   * Stops the current multiget after its current key; its line stays in `pending` and resumeGet
   * goes on from there. At --max-conn-buffer the reply so far is sent and the rest follows as the
   * socket drains (so a virtual key failing later can only end the reply with its error line after
   * what was sent). After the connection's Lua time, the reply so far is held back while other
   * connections have a turn.
   */
  private stopGet(start: number, withCas: boolean, touch: boolean, exptime: number): Step {
    const line = this.lineStart;
    this.stoppedKeyAt = this.keyEnd - line;
    this.stoppedLineEnd = this.lineEnd - line;
    this.stoppedNext = this.next - line;
    this.stoppedWithCas = withCas;
    this.stoppedTouch = touch;
    this.stoppedExptime = exptime;
    this.next = line;
    if (this.out.length < this.ctx.config.maxConnBufferBytes) {
      this.held = this.out.length - start;
      this.yieldTurn();
    }
    return Step.Wait;
  }

  /** Goes on with the multiget stopGet stopped, whose line starts at buf[pos]. */
  private resumeGet(buf: Uint8Array, pos: number): Step {
    this.lineStart = pos;
    this.lineEnd = pos + this.stoppedLineEnd;
    this.next = pos + this.stoppedNext;
    // The walk goes on by scanning the line, as it does past MAX_TOKENS words.
    this.ntokens = MAX_TOKENS;
    this.keyToken = MAX_TOKENS;
    this.keyEnd = pos + this.stoppedKeyAt;
    this.stoppedKeyAt = -1;
    return this.getKeys(buf, this.stoppedWithCas, this.stoppedTouch, this.stoppedExptime);
  }

  /** Lets other connections go first: parsing goes on (the server is woken) on a later turn of the event loop. */
  private yieldTurn(): void {
    this.luaMs = 0;
    this.ctx.counters.conn_yields++;
    this.deliver(nextTurn());
  }

  /**
   * Appends the reply block of one retrieval key (nothing on a miss) to `target`. Failed: a
   * virtual key's script failed and its error line, errorLength bytes, ends `target`. Async: the
   * script answers later; its reply is `asyncPart` and nothing was appended.
   */
  private lookupInto(target: OutputBuffer, buf: Uint8Array, k: number, klen: number, withCas: boolean, touch: boolean, exptime: number): Lookup {
    const { store, counters, virtualKey, nativeKey } = this.ctx;
    if (touch) counters.cmd_touch++;
    counters.cmd_get++;
    // Virtual keys run for plain `get` only, as in the original (gets/gat need a real item).
    if (virtualKey !== null && !withCas && !touch && hasColon(buf, k, klen)) {
      // Lua takes the store lock itself, call by call.
      this.releaseStore();
      // Bounded work (one member, a count): outside the connection's Lua time.
      const served = nativeKey ? nativeKey(buf, k, klen, target) : -1;
      if (served >= 0) {
        if (served === 0) {
          counters.get_hits++;
          return Lookup.Ok;
        }
        this.errorLength = served;
        return Lookup.Failed;
      }
      const t0 = performance.now();
      const reply = virtualKey(latin1String(buf, k, k + klen));
      this.luaMs += performance.now() - t0;
      if (reply instanceof Promise) {
        counters.get_hits++;
        this.asyncPart = reply;
        return Lookup.Async;
      }
      if (reply !== null) {
        if (reply.length === 0) {
          // The handler answered nothing: a miss, like a plain key that is not there.
          counters.get_misses++;
          return Lookup.Ok;
        }
        target.put(reply);
        this.ctx.madeGarbage(reply.length);
        if (reply[0] !== 86 /* V */) {
          this.errorLength = reply.length;
          return Lookup.Failed;
        }
        counters.get_hits++;
        return Lookup.Ok;
      }
    }
    // Hits that change nothing are read without the lock when no holder ran meanwhile.
    if (!touch && !this.storeHeld) {
      const seen = this.peekInto(target, buf, k, klen, withCas);
      if (seen !== PEEK_NEEDS_LOCK) {
        counters.get_lock_free++;
        if (seen === 0) counters.get_misses++;
        else counters.get_hits++;
        return Lookup.Ok;
      }
    }
    // The store lock covers the lookup and the copy: no other thread can change or free the item
    // in between, so a value is never torn. It stays held for the request's next plain key.
    if (!this.storeHeld) {
      store.lock.lock();
      this.storeHeld = true;
    }
    // A peek that found the item and only had to leave its bump to a holder needs no second
    // lookup when no holder has run since it began.
    const peeked = this.peekedForBump;
    this.peekedForBump = 0;
    const it =
      peeked !== 0 && !touch && store.lock.unchangedSince(this.peekToken) && store.bumpPeeked(peeked)
        ? peeked
        : touch
          ? store.getAndTouch(buf, k, klen, exptime)
          : store.get(buf, k, klen);
    if (it !== 0) this.writeValue(target, buf, k, klen, it, withCas);
    if (it === 0) {
      counters.get_misses++;
      if (touch) counters.touch_misses++;
      return Lookup.Ok;
    }
    counters.get_hits++;
    if (touch) counters.touch_hits++;
    return Lookup.Ok;
  }

  /**
   * A lock-free read (Store.peek, SharedLock.readBegin/readValid): 1 for a hit, its block appended
   * to target; 0 for a miss; PEEK_NEEDS_LOCK, target unchanged, when it must be read locked.
   */
  private peekInto(target: OutputBuffer, buf: Uint8Array, k: number, klen: number, withCas: boolean): number {
    const store = this.ctx.store;
    const token = store.lock.readBegin();
    if (token === -1) return PEEK_NEEDS_LOCK;
    const mark = target.length;
    try {
      const it = store.peek(buf, k, klen);
      if (it > 0) this.writeValue(target, buf, k, klen, it, withCas);
      if (it !== PEEK_NEEDS_LOCK && store.lock.readValid(token)) return it === 0 ? 0 : 1;
      this.peekedForBump = store.peekedForBump;
      this.peekToken = token;
    } catch {
      // A read that raced a writer may follow a half-written link anywhere; the locked read decides.
    }
    target.length = mark;
    return PEEK_NEEDS_LOCK;
  }

  /**
   * A retrieval with keys owned elsewhere. All on one other node: the line is forwarded as it is.
   * Else each owner gets its keys and the replies are merged in key order (cluster/multiget.ts).
   */
  private routedGet(buf: Uint8Array, first: number, keyCount: number, withCas: boolean, touch: boolean, exptime: number): Step {
    const router = this.ctx.router!;
    const session = this.session!;
    const owners = this.keyOwners;
    let single = owners[0];
    for (let i = 1; i < keyCount && single >= 0; i++) if (owners[i] !== single) single = -1;
    if (single >= 0) {
      session.forwardGet(single, buf, this.lineStart, this.lineEnd, this.starts[first], this.lineEnd, keyCount);
      return this.afterForward();
    }
    // The merge keeps a copy of the line: keys are found in it by offset.
    const lineStart = this.lineStart;
    const merge = session.multiget(buf, lineStart, this.lineEnd);
    const blocks = merge.localBlocks;
    let i = 0;
    this.firstKey(first);
    try {
      while (this.nextKey(buf)) {
        const k = this.keyStart;
        const klen = this.keyEnd - k;
        const owner = owners[i++];
        if (owner !== router.selfIndex) {
          merge.addRemote(owner, k - lineStart, k + klen - lineStart);
          continue;
        }
        const start = blocks.length;
        const result = this.lookupInto(blocks, buf, k, klen, withCas, touch, exptime);
        if (result === Lookup.Failed) {
          // Nothing was sent yet: the script's error line answers the request.
          this.out.putBytes(blocks.bytes, blocks.length - this.errorLength, this.errorLength);
          return Step.Done;
        }
        if (result === Lookup.Async) merge.addLocalLater(this.asyncPart!);
        else merge.addLocal(start);
      }
    } finally {
      this.releaseStore();
    }
    session.sendMultiget(merge, this.ends[first - 1] - lineStart);
    return this.afterForward();
  }

  /** Gives back the store lock lookupInto took, if it did. */
  private releaseStore(): void {
    if (!this.storeHeld) return;
    this.storeHeld = false;
    this.ctx.store.lock.unlock();
  }

  private growKeyOwners(): void {
    const grown = new Int32Array(this.keyOwners.length * 2);
    grown.set(this.keyOwners);
    this.keyOwners = grown;
  }

  /** Node owning a key; a virtual key belongs with its object. */
  private ownerOf(buf: Uint8Array, k: number, klen: number): number {
    const router = this.ctx.router!;
    const routingKey = this.ctx.routingKey;
    if (routingKey !== null && hasColon(buf, k, klen)) {
      const bytes = latin1Bytes(routingKey(latin1String(buf, k, k + klen)));
      return router.ownerOf(bytes, 0, bytes.length);
    }
    return router.ownerOf(buf, k, klen);
  }

  /**
   * Hands the current request (its line, without noreply, and its data block if any) to the
   * forwarding session; the owner's reply takes this request's place among the replies, or is
   * dropped for noreply.
   */
  private forward(buf: Uint8Array, owner: number, kind: ReplyKind, noreply: boolean, dataStart: number, dataEnd: number): Step {
    let lineEnd = this.lineEnd;
    if (noreply) {
      lineEnd = this.starts[this.ntokens - 1];
      while (lineEnd > this.lineStart && buf[lineEnd - 1] === 32) lineEnd--;
    }
    this.session!.forward(owner, kind, noreply, buf, this.lineStart, lineEnd, dataStart, dataEnd, 0, 0);
    return this.afterForward();
  }

  /** Parsing goes on unless the connection has as many forwarded requests out as it may. */
  private afterForward(): Step {
    if (!this.session!.full) return Step.Done;
    this.forwardsFull = true;
    this.waiting = true;
    return Step.Wait;
  }

  /** Forwarded replies came in: they may be sent, and parsing may go on if it waited for room. */
  private settled(): void {
    if (this.forwardsFull && !this.session!.full) {
      this.forwardsFull = false;
      this.waiting = false;
    }
    this.onWake?.();
  }

  /** Counts time a meta request spent in Lua toward the connection's turn (see parse). */
  spentInLua(ms: number): void {
    this.luaMs += ms;
  }

  /**
   * With --cluster: when another node owns key[off, off + len), forwards the current meta request
   * (its line as sent, and the data block buf[dataStart, dataEnd) of an ms) and returns the step;
   * null when the key is this node's.
   */
  forwardMeta(buf: Uint8Array, key: Uint8Array, off: number, len: number, kind: ReplyKind, dataStart: number, dataEnd: number): Step | null {
    const router = this.ctx.router;
    if (router === null) return null;
    const owner = this.ownerOf(key, off, len);
    if (owner === router.selfIndex) return null;
    this.session!.forward(owner, kind, false, buf, this.lineStart, this.lineEnd, dataStart, dataEnd, 0, 0);
    return this.afterForward();
  }

  /** The owner of the current request's key (token 1) when it is another node, else -1. */
  private remoteOwner(buf: Uint8Array): number {
    const router = this.ctx.router;
    if (router === null) return -1;
    const owner = this.ownerOf(buf, this.starts[1], this.ends[1] - this.starts[1]);
    return owner === router.selfIndex ? -1 : owner;
  }

  /** Holds later requests until `reply` arrives, then queues it and wakes the connection. */
  deliver(reply: Promise<Uint8Array | null>): void {
    this.waiting = true;
    void reply.then((bytes) => {
      if (bytes !== null) this.out.put(bytes);
      this.waiting = false;
      this.onWake?.();
    });
  }

  private writeValue(target: OutputBuffer, key: Uint8Array, k: number, klen: number, it: number, withCas: boolean): void {
    const out = target;
    const store = this.ctx.store;
    const vlen = store.valueLength(it);
    out.put(R.R_VALUE);
    out.putBytes(key, k, klen);
    out.putByte(32);
    out.putDecimal(store.flagsOf(it));
    out.putByte(32);
    out.putDecimal(vlen);
    if (withCas) {
      out.putByte(32);
      out.putDecimal(store.casOf(it));
    }
    out.reserve(vlen + 4);
    out.bytes[out.length++] = 13;
    out.bytes[out.length++] = 10;
    out.length += store.copyValueTo(it, out.bytes, out.length);
    out.bytes[out.length++] = 13;
    out.bytes[out.length++] = 10;
  }

  // ---- storage ----

  /**
   * The data block of a storage command (text or meta) whose line ends at `nl`, `vlen` bytes and a
   * CRLF: DATA_INCOMPLETE while it has not all come; else the command is counted and `next` moves
   * past the block, and the result is DATA_BAD_CHUNK when it does not end in CRLF, else where it
   * starts.
   */
  frameData(buf: Uint8Array, nl: number, end: number, vlen: number): number {
    const dataStart = nl + 1;
    if (dataStart + vlen + 2 > end) return DATA_INCOMPLETE;
    this.next = dataStart + vlen + 2;
    this.ctx.counters.cmd_set++;
    return buf[dataStart + vlen] === 13 && buf[dataStart + vlen + 1] === 10 ? dataStart : DATA_BAD_CHUNK;
  }

  /**
   * A storage command. Only the common path is here; malformed, refused and unauthenticated
   * requests go to their own methods, which keeps this hot one small for the JIT (its FTL compile
   * under the hit-ratio bench's W1 took 150 ms before the split, 84 ms after).
   */
  private update(buf: Uint8Array, nl: number, end: number, mode: StoreMode): Step {
    const isCas = mode === StoreMode.Cas;
    const fields = isCas ? 6 : 5;
    if (this.ntokens < fields || this.ntokens > fields + 1) return this.malformedUpdate(buf);
    const flags = parseUnsigned(buf, this.starts[2], this.ends[2]);
    const exptime = parseExptime(buf, this.starts[3], this.ends[3]);
    const vlen = parseSigned(buf, this.starts[4], this.ends[4]);
    const cas = isCas ? (fitsU64(buf, this.starts[5], this.ends[5]) ? parseUnsigned(buf, this.starts[5], this.ends[5]) : -1) : 0;
    if (flags < 0 || flags > 0xffffffff || Number.isNaN(exptime) || Number.isNaN(vlen) || vlen < 0 || vlen > 0x7ffffffd || cas < 0) {
      // As memcached's set_noreply_maybe: a last token noreply silences even an error.
      this.reply(this.noreply(buf), R.R_BAD_FORMAT);
      return Step.Done;
    }
    const keyStart = this.starts[1];
    const keyLen = this.ends[1] - keyStart;
    const store = this.ctx.store;
    if (keyLen > KEY_MAX_BYTES || vlen + keyLen + HEADER_BYTES > store.maxItemBytes) return this.refusedUpdate(buf, mode, keyLen, vlen);
    const dataStart = this.frameData(buf, nl, end, vlen);
    if (dataStart === DATA_INCOMPLETE) return Step.NeedMore;
    const noreply = this.noreply(buf);
    if (dataStart === DATA_BAD_CHUNK) {
      this.reply(noreply, R.R_BAD_CHUNK);
      return Step.Done;
    }
    if (!this.authenticated) return this.authenticate(buf, dataStart, vlen);
    const owner = this.remoteOwner(buf);
    if (owner >= 0) return this.forward(buf, owner, ReplyKind.Storage, noreply, dataStart, this.next);
    let result: StoreResult;
    store.lock.lock();
    try {
      result = store.store(mode, buf, keyStart, keyLen, flags, exptime, buf, dataStart, vlen, cas);
    } finally {
      store.lock.unlock();
    }
    // As memcached: an append or prepend past the item size limit is not stored, the old value kept.
    if (result === StoreResult.TooLarge && (mode === StoreMode.Append || mode === StoreMode.Prepend)) result = StoreResult.NotStored;
    if (isCas) this.countCas(result);
    this.reply(noreply, storeReply(result));
    return Step.Done;
  }

  /** A storage line with too few or too many words: its data block is skipped when its length is readable. */
  private malformedUpdate(buf: Uint8Array): Step {
    const vlen = this.ntokens > 4 ? parseSigned(buf, this.starts[4], this.ends[4]) : Number.NaN;
    if (Number.isNaN(vlen) || vlen < 0 || vlen > 0x7ffffffd) this.out.put(R.R_ERROR);
    else {
      this.reply(this.noreply(buf), R.R_BAD_FORMAT);
      this.swallowLeft = vlen + 2;
    }
    return Step.Done;
  }

  /** A key too long or an item too large: refused, and its data block is discarded, not read as commands. */
  private refusedUpdate(buf: Uint8Array, mode: StoreMode, keyLen: number, vlen: number): Step {
    const noreply = this.noreply(buf);
    this.swallowLeft = vlen + 2;
    if (keyLen > KEY_MAX_BYTES) {
      this.reply(noreply, R.R_BAD_FORMAT);
      return Step.Done;
    }
    this.ctx.counters.cmd_set++;
    const store = this.ctx.store;
    const keyStart = this.starts[1];
    if (mode === StoreMode.Set) store.lock.hold(() => store.delete(buf, keyStart, keyLen));
    this.reply(noreply, R.R_TOO_LARGE);
    return Step.Done;
  }

  /** With --auth-file, the first set of a connection carries its credentials. */
  private authenticate(buf: Uint8Array, dataStart: number, vlen: number): Step {
    const counters = this.ctx.counters;
    this.authenticated = this.ctx.auth!.check(buf, dataStart, vlen);
    if (!this.authenticated) counters.auth_errors++;
    counters.auth_cmds++;
    this.out.put(this.authenticated ? R.R_STORED : R.R_AUTH_FAILED);
    return Step.Done;
  }

  private countCas(result: StoreResult): void {
    const counters = this.ctx.counters;
    if (result === StoreResult.Stored) counters.cas_hits++;
    else if (result === StoreResult.Exists) counters.cas_badval++;
    else if (result === StoreResult.NotFound) counters.cas_misses++;
  }

  /**
   * The common start of `<command> <key> <argument> [noreply]` (incr, decr, touch): checks the
   * arity and the key. Returns noreply, or null when it has already replied with the error.
   */
  private keyCommand(buf: Uint8Array): boolean | null {
    if (!this.arity(3, 4)) return null;
    // `incr k noreply`: noreply stands where the argument should, and silences the error.
    const noreply = this.noreply(buf);
    if (this.ends[1] - this.starts[1] > KEY_MAX_BYTES) {
      this.reply(noreply, R.R_BAD_FORMAT);
      return null;
    }
    return noreply;
  }

  private delta(buf: Uint8Array, incr: boolean): Step {
    const noreply = this.keyCommand(buf);
    if (noreply === null) return Step.Done;
    const keyStart = this.starts[1];
    const keyLen = this.ends[1] - keyStart;
    const amount = parseCounter(buf, this.starts[2], this.ends[2]);
    if (amount < 0n) {
      this.reply(noreply, R.R_BAD_DELTA);
      return Step.Done;
    }
    const owner = this.remoteOwner(buf);
    if (owner >= 0) return this.forward(buf, owner, ReplyKind.Delta, noreply, 0, 0);
    const { store, counters } = this.ctx;
    let result: DeltaResult;
    store.lock.lock();
    try {
      result = store.delta(buf, keyStart, keyLen, incr, amount);
    } finally {
      store.lock.unlock();
    }
    if (result === DeltaResult.NotFound) {
      if (incr) counters.incr_misses++;
      else counters.decr_misses++;
      this.reply(noreply, R.R_NOT_FOUND);
    } else if (result === DeltaResult.NonNumeric) {
      this.reply(noreply, R.R_NON_NUMERIC);
    } else if (result === DeltaResult.NoMemory) {
      this.reply(noreply, R.R_NO_MEMORY);
    } else {
      if (incr) counters.incr_hits++;
      else counters.decr_hits++;
      if (!noreply) this.out.putAscii(`${store.lastDelta}\r\n`);
    }
    return Step.Done;
  }

  private touch(buf: Uint8Array): Step {
    const noreply = this.keyCommand(buf);
    if (noreply === null) return Step.Done;
    const keyStart = this.starts[1];
    const keyLen = this.ends[1] - keyStart;
    const exptime = parseExptime(buf, this.starts[2], this.ends[2]);
    if (Number.isNaN(exptime)) {
      this.reply(noreply, R.R_BAD_EXPTIME);
      return Step.Done;
    }
    const owner = this.remoteOwner(buf);
    if (owner >= 0) return this.forward(buf, owner, ReplyKind.Touch, noreply, 0, 0);
    const { store, counters } = this.ctx;
    counters.cmd_touch++;
    let touched: boolean;
    store.lock.lock();
    try {
      touched = store.touch(buf, keyStart, keyLen, exptime);
    } finally {
      store.lock.unlock();
    }
    if (touched) {
      counters.touch_hits++;
      this.reply(noreply, R.R_TOUCHED);
    } else {
      counters.touch_misses++;
      this.reply(noreply, R.R_NOT_FOUND);
    }
    return Step.Done;
  }

  private remove(buf: Uint8Array): Step {
    if (!this.arity(2, 4)) return Step.Done;
    const n = this.ntokens;
    const noreply = this.noreply(buf);
    if (n > 2) {
      const holdIsZero = this.is(buf, 2, "0");
      const valid = (n === 3 && (holdIsZero || noreply)) || (n === 4 && holdIsZero && noreply);
      if (!valid) {
        this.reply(noreply, R.R_BAD_DELETE);
        return Step.Done;
      }
    }
    const keyStart = this.starts[1];
    const keyLen = this.ends[1] - keyStart;
    if (keyLen > KEY_MAX_BYTES) {
      this.reply(noreply, R.R_BAD_FORMAT);
      return Step.Done;
    }
    const owner = this.remoteOwner(buf);
    if (owner >= 0) return this.forward(buf, owner, ReplyKind.Delete, noreply, 0, 0);
    const { store, counters } = this.ctx;
    let deleted: boolean;
    store.lock.lock();
    try {
      deleted = store.delete(buf, keyStart, keyLen);
    } finally {
      store.lock.unlock();
    }
    if (deleted) {
      counters.delete_hits++;
      this.reply(noreply, R.R_DELETED);
    } else {
      counters.delete_misses++;
      this.reply(noreply, R.R_NOT_FOUND);
    }
    return Step.Done;
  }

  // ---- other commands ----

  private flushAll(buf: Uint8Array): Step {
    if (!this.arity(1, 3)) return Step.Done;
    const n = this.ntokens;
    const noreply = n > 1 && this.noreply(buf);
    if (this.ctx.config.disableFlushAll) {
      this.reply(noreply, R.R_FLUSH_DISABLED);
      return Step.Done;
    }
    let delay = 0;
    if (n === 3 || (n === 2 && !noreply)) {
      delay = parseExptime(buf, this.starts[1], this.ends[1]);
      if (Number.isNaN(delay)) {
        this.reply(noreply, R.R_BAD_EXPTIME);
        return Step.Done;
      }
    }
    this.ctx.counters.cmd_flush++;
    this.ctx.flushAll(delay);
    this.reply(noreply, R.R_OK);
    return Step.Done;
  }

  private verbosity(buf: Uint8Array): Step {
    if (!this.arity(2, 3)) return Step.Done;
    const n = this.ntokens;
    const noreply = this.noreply(buf);
    if ((n === 3 || !noreply) && parseUnsigned(buf, this.starts[1], this.ends[1]) < 0) {
      this.reply(noreply, R.R_BAD_FORMAT);
      return Step.Done;
    }
    this.reply(noreply, R.R_OK);
    return Step.Done;
  }

  private stats(buf: Uint8Array): Step {
    const out = this.out;
    if (this.ntokens === 2 && this.is(buf, 1, "reset")) {
      this.ctx.stats.counterTable.reset();
      this.ctx.store.counters.evictions = 0;
      this.ctx.store.counters.reclaimed = 0;
      this.ctx.store.counters.expiredUnfetched = 0;
      this.ctx.store.crawler.reclaimed = 0;
      this.ctx.store.crawler.itemsChecked = 0;
      this.ctx.store.counters.totalItems = 0;
      out.put(R.R_RESET);
      return Step.Done;
    }
    const group = this.ntokens >= 2 ? latin1String(buf, this.starts[1], this.ends[1]) : "";
    const lines = statsLines(this.ctx.stats, group);
    if (lines === null) {
      out.put(R.R_ERROR);
      return Step.Done;
    }
    for (const [name, value] of lines) out.putAscii(`STAT ${name} ${value}\r\n`);
    out.put(R.R_END);
    return Step.Done;
  }

  private shutdown(): Step {
    if (!this.ctx.config.enableShutdown) {
      this.out.put(R.R_SHUTDOWN_DISABLED);
      return Step.Done;
    }
    this.ctx.shutdown();
    return Step.Close;
  }

  private reply(noreply: boolean, constant: Uint8Array): void {
    if (!noreply) this.out.put(constant);
  }
}

function storeReply(result: StoreResult): Uint8Array {
  switch (result) {
    case StoreResult.Stored:
      return R.R_STORED;
    case StoreResult.NotStored:
      return R.R_NOT_STORED;
    case StoreResult.Exists:
      return R.R_EXISTS;
    case StoreResult.NotFound:
      return R.R_NOT_FOUND;
    case StoreResult.TooLarge:
      return R.R_TOO_LARGE;
    default:
      return R.R_NO_MEMORY;
  }
}

/**
 * Where the significant digits of a decimal token start, after an optional '+' and leading zeros
 * (strtoul accepts both); -1 when the token is not a number.
 */
function significantDigits(buf: Uint8Array, s: number, e: number): number {
  if (s < e && buf[s] === 43) s++;
  if (s >= e) return -1;
  for (let i = s; i < e; i++) if (buf[i] < 48 || buf[i] > 57) return -1;
  while (s < e - 1 && buf[s] === 48) s++;
  return s;
}

/** Unsigned decimal of up to 20 significant digits (exact below 2^53), or -1 when not a number. */
export function parseUnsigned(buf: Uint8Array, s: number, e: number): number {
  const d = significantDigits(buf, s, e);
  if (d < 0 || e - d > 20) return -1;
  let n = 0;
  for (let i = d; i < e; i++) n = n * 10 + (buf[i] - 48);
  return n;
}

/**
 * Called, not inlined: a storage line parses three or four numbers, and with the digit loops
 * inlined at each, `update` was the largest function the optimizing compiler took on (6.7 KB of
 * machine code, 70-125 ms), compiled while the arena is already full. The compiler's working
 * memory during that compile made the peak RSS of the hit-ratio bench (W1 and W4 rose 4-8 MiB
 * for its duration). Called, `update` compiles to 4.5 KB under a write flood, and the W1/W4 peaks
 * at -m 64 fell from 131-134 MiB to 127-130 MiB (twelve runs of bench/hitrate.ts).
 */
neverInline(parseUnsigned);

const U64_MAX_DIGITS = "18446744073709551615";

/** Whether the token is an unsigned decimal no larger than 2^64 - 1. */
function fitsU64(buf: Uint8Array, s: number, e: number): boolean {
  const d = significantDigits(buf, s, e);
  if (d < 0 || e - d > 20) return false;
  if (e - d < 20) return true;
  for (let i = 0; i < 20; i++) {
    const c = buf[d + i] - U64_MAX_DIGITS.charCodeAt(i);
    if (c !== 0) return c < 0;
  }
  return true;
}

/** An exptime: a signed decimal within 32 bits (memcached's range), or NaN. */
export function parseExptime(buf: Uint8Array, s: number, e: number): number {
  const n = parseSigned(buf, s, e);
  return n > 0x7fffffff || n < -0x80000000 ? Number.NaN : n;
}

/** Signed decimal (an optional leading '-'), or NaN when the token is not one. */
export function parseSigned(buf: Uint8Array, s: number, e: number): number {
  if (s < e && buf[s] === 45) {
    const n = parseUnsigned(buf, s + 1, e);
    return n < 0 ? Number.NaN : -n;
  }
  const n = parseUnsigned(buf, s, e);
  return n < 0 ? Number.NaN : n;
}

