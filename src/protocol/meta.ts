/**
 * memcached's meta commands (`mg ms md ma mn me`), answered as memcached 1.6.45 does
 * (doc/protocol.txt, "Meta Commands"). The text protocol tokenizes each line and hands over the
 * two-letter commands starting with `m`; this module parses their flags and calls the store under
 * its lock, as the classic commands do. Keys and values stay bytes: a base64 key (`b`) is decoded
 * into a key buffer, a value goes from the input to the store and from the store to the output.
 */
import { quietKind, ReplyKind } from "../cluster/reply-shape.ts";
import { parseCounter } from "../decimal.ts";
import { latin1String } from "../latin1.ts";
import { HEADER_BYTES, KEY_BINARY, KEY_MAX_BYTES, STALE, WIN_SENT } from "../store/item.ts";
import { DeltaResult, PEEK_NEEDS_LOCK, StoreMode, StoreResult } from "../store/store.ts";
import { OutputBuffer } from "./output.ts";
import * as R from "./replies.ts";
import { DATA_BAD_CHUNK, DATA_INCOMPLETE, hasColon, parseExptime, parseSigned, parseUnsigned, type ProtocolContext, Step } from "./text.ts";

/** What the meta commands need from the text protocol that tokenized the line. */
export interface MetaHost {
  readonly out: OutputBuffer;
  /** The line's tokens: [starts[i], ends[i]) for i below ntokens. */
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly ntokens: number;
  /** Where the next request starts (ms moves it past its data block). */
  next: number;
  /** Bytes of a refused data block still to discard. */
  swallowLeft: number;
  /** Holds later replies until `reply` has come (a virtual key answering later). */
  deliver(reply: Promise<Uint8Array | null>): void;
  /**
   * With --cluster: forwards the current request to the owner of key[off, off + len) when that is
   * another node (with the data block buf[dataStart, dataEnd) of an ms); null when it is this one.
   */
  forwardMeta(buf: Uint8Array, key: Uint8Array, off: number, len: number, kind: ReplyKind, dataStart: number, dataEnd: number): Step | null;
  /** Counts Lua time toward the connection's turn, so a pipeline of slow virtual keys yields. */
  spentInLua(ms: number): void;
  /** The data block of an ms: see TextProtocol.frameData. */
  frameData(buf: Uint8Array, nl: number, end: number, vlen: number): number;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const R_HD = enc("HD");
const R_VA = enc("VA ");
const R_EN = enc("EN");
const R_NS = enc("NS");
const R_EX = enc("EX");
const R_NF = enc("NF");
const R_MN = enc("MN\r\n");
const R_EN_LINE = enc("EN\r\n");
const R_INVALID_FLAG = enc("CLIENT_ERROR invalid flag\r\n");
const R_DUPLICATE_FLAG = enc("CLIENT_ERROR duplicate flag\r\n");
const R_BAD_TOKEN = enc("CLIENT_ERROR bad token in command line format\r\n");
const R_M_LENGTH = enc("CLIENT_ERROR incorrect length for M token\r\n");
const R_BAD_INITIAL = enc("CLIENT_ERROR invalid numeric initial value\r\n");
const R_BAD_DELTA = enc("CLIENT_ERROR invalid numeric delta value\r\n");
const R_OPAQUE_TOO_LONG = enc("CLIENT_ERROR opaque token too long\r\n");
const R_BAD_KEY_ENCODING = enc("CLIENT_ERROR error decoding key\r\n");
const R_TOO_MANY_FLAGS_MG = enc("CLIENT_ERROR options flags are too long\r\n");
const R_TOO_MANY_FLAGS = enc("CLIENT_ERROR options flags too long\r\n");
const R_INVALID_OR_DUPLICATE = enc("CLIENT_ERROR invalid or duplicate flag\r\n");
const R_MS_MODE = enc("CLIENT_ERROR invalid mode for ms M token\r\n");
const R_MA_MODE = enc("CLIENT_ERROR invalid mode for ma M token\r\n");
const R_DELTA_NO_MEMORY = enc("SERVER_ERROR out of memory\r\n");
const EMPTY = new Uint8Array(0);

/** memcached refuses a meta line of more tokens than this (MFLAG_MAX_OPT_LENGTH, less its terminal token). */
const MAX_META_TOKENS = 19;
/** An opaque token, its `O` included, is at most this long. */
const MAX_OPAQUE_BYTES = 32;
/** The longest base64 token a key of KEY_MAX_BYTES decoded bytes can take. */
const MAX_BASE64_KEY_BYTES = Math.ceil(KEY_MAX_BYTES / 3) * 4;
/** E (a CAS given by the client) must fit the store's exact CAS range. */
const MAX_CAS = Number.MAX_SAFE_INTEGER;

const A = 65;
const Z = 90;
const a = 97;
const z = 122;

/** The meta commands of one connection; each request's flags are parsed into the fields below. */
export class MetaCommands {
  /** Flags seen on the current line: bit (c - 'a') of `lower`, bit (c - 'A') of `upper`. */
  private lower = 0;
  private upper = 0;
  private vivifyTtl = 0;
  private recacheTtl = 0;
  private newTtl = 0;
  private clientFlags = 0;
  private compareCas = 0;
  private newCas = 0;
  private mode = 0;
  private initial = 0n;
  private delta = 1n;
  /** The key the store sees: the token itself, or its base64 decoding in `decoded`. */
  private key: Uint8Array = EMPTY;
  private keyOff = 0;
  private keyLen = 0;
  private readonly decoded = new Uint8Array(KEY_MAX_BYTES);

  constructor(
    private readonly ctx: ProtocolContext,
    private readonly host: MetaHost,
  ) {}

  /** One meta request; its line is tokenized and ends at buf[nl]. */
  dispatch(buf: Uint8Array, nl: number, end: number): Step {
    const host = this.host;
    const c1 = buf[host.starts[0] + 1];
    if (c1 === 110 /* n */) {
      host.out.put(R_MN);
      return Step.Done;
    }
    if (host.ntokens < 2) {
      host.out.put(R.R_ERROR);
      return Step.Done;
    }
    switch (c1) {
      case 103: // g
        return this.get(buf);
      case 115: // s
        return this.set(buf, nl, end);
      case 100: // d
        return this.remove(buf);
      case 97: // a
        return this.arithmetic(buf);
      case 101: // e
        return this.debug(buf);
    }
    host.out.put(R.R_ERROR);
    return Step.Done;
  }

  // ---- flags ----

  private has(c: number): boolean {
    return c >= a ? (this.lower & (1 << (c - a))) !== 0 : (this.upper & (1 << (c - A))) !== 0;
  }

  /**
   * Checks the key token and reads the flag tokens from `first` on; sets the key the store sees.
   * Returns the error line to answer instead (flag errors as `flagError` when given), or null.
   */
  private prepare(buf: Uint8Array, first: number, flagError: Uint8Array | null): Uint8Array | null {
    const host = this.host;
    const keyStart = host.starts[1];
    const keyLen = host.ends[1] - keyStart;
    // As memcached, a key too long is the first error, before the flags are read.
    if (keyLen > MAX_BASE64_KEY_BYTES || (keyLen > KEY_MAX_BYTES && !this.lineHasB(buf, first))) return R.R_BAD_FORMAT;
    if (host.ntokens > MAX_META_TOKENS) return buf[host.starts[0] + 1] === 103 ? R_TOO_MANY_FLAGS_MG : R_TOO_MANY_FLAGS;
    const error = this.readFlags(buf, first);
    if (error !== null) return flagError ?? error;
    if (!this.has(98 /* b */)) {
      this.key = buf;
      this.keyOff = keyStart;
      this.keyLen = keyLen;
      return null;
    }
    const n = decodeBase64(buf, keyStart, keyStart + keyLen, this.decoded);
    if (n === -2) return R.R_BAD_FORMAT;
    if (n <= 0) return R_BAD_KEY_ENCODING;
    this.key = this.decoded;
    this.keyOff = 0;
    this.keyLen = n;
    return null;
  }

  /** Whether a flag token from `first` on is `b` (a base64 key may be longer than KEY_MAX_BYTES). */
  private lineHasB(buf: Uint8Array, first: number): boolean {
    const { starts, ends, ntokens } = this.host;
    for (let i = first; i < ntokens; i++) if (ends[i] - starts[i] === 1 && buf[starts[i]] === 98) return true;
    return false;
  }

  private readFlags(buf: Uint8Array, first: number): Uint8Array | null {
    const { starts, ends, ntokens } = this.host;
    this.lower = 0;
    this.upper = 0;
    this.delta = 1n;
    this.initial = 0n;
    this.mode = 0;
    this.clientFlags = 0;
    for (let i = first; i < ntokens; i++) {
      const s = starts[i];
      const e = ends[i];
      const c = buf[s];
      if (c >= a && c <= z) {
        const bit = 1 << (c - a);
        if ((this.lower & bit) !== 0) return R_DUPLICATE_FLAG;
        this.lower |= bit;
      } else if (c >= A && c <= Z) {
        const bit = 1 << (c - A);
        if ((this.upper & bit) !== 0) return R_DUPLICATE_FLAG;
        this.upper |= bit;
      } else return R_INVALID_FLAG;
      switch (c) {
        case 98: // b c f h k l q s t u v x: no token
        case 99:
        case 102:
        case 104:
        case 107:
        case 108:
        case 113:
        case 115:
        case 116:
        case 117:
        case 118:
        case 120:
        case 73: // I
        case 80: // P, L: hints for proxies, ignored
        case 76:
          break;
        case 79: // O
          if (e - s > MAX_OPAQUE_BYTES) return R_OPAQUE_TOO_LONG;
          break;
        case 78: // N
          this.vivifyTtl = parseExptime(buf, s + 1, e);
          if (Number.isNaN(this.vivifyTtl)) return R_BAD_TOKEN;
          break;
        case 82: // R
          this.recacheTtl = parseExptime(buf, s + 1, e);
          if (Number.isNaN(this.recacheTtl)) return R_BAD_TOKEN;
          break;
        case 84: // T
          this.newTtl = parseExptime(buf, s + 1, e);
          if (Number.isNaN(this.newTtl)) return R_BAD_TOKEN;
          break;
        case 70: // F
          this.clientFlags = parseUnsigned(buf, s + 1, e);
          if (this.clientFlags < 0 || this.clientFlags > 0xffffffff) return R_BAD_TOKEN;
          break;
        case 67: // C
          this.compareCas = parseUnsigned(buf, s + 1, e);
          if (this.compareCas < 0) return R_BAD_TOKEN;
          break;
        case 69: // E
          this.newCas = parseUnsigned(buf, s + 1, e);
          if (this.newCas < 0 || this.newCas > MAX_CAS) return R_BAD_TOKEN;
          break;
        case 77: // M
          if (e - s !== 2) return R_M_LENGTH;
          this.mode = buf[s + 1];
          break;
        case 74: // J
          this.initial = parseCounter(buf, s + 1, e);
          if (this.initial < 0n) return R_BAD_INITIAL;
          break;
        case 68: // D
          this.delta = parseCounter(buf, s + 1, e);
          if (this.delta < 0n) return R_BAD_DELTA;
          break;
        default:
          return R_INVALID_FLAG;
      }
    }
    return null;
  }

  /** ` k<key>` as the client sent the key token, with ` b` when it was base64. */
  private putKey(buf: Uint8Array): void {
    const out = this.host.out;
    const s = this.host.starts[1];
    out.putByte(32);
    out.putByte(107);
    out.putBytes(buf, s, this.host.ends[1] - s);
    if (this.has(98)) {
      out.putByte(32);
      out.putByte(98);
    }
  }

  /**
   * ` k<key>` of a hit as memcached prints it: base64 with ` b` when the item was stored with a
   * base64 key, else its bytes, whatever form this request used.
   */
  private putItemKey(it: number): void {
    const store = this.ctx.store;
    const out = this.host.out;
    const len = store.copyKeyTo(it, this.decoded, 0);
    out.putByte(32);
    out.putByte(107);
    if (!store.hasBit(it, KEY_BINARY)) {
      out.putBytes(this.decoded, 0, len);
      return;
    }
    encodeBase64(this.decoded, len, out);
    out.putByte(32);
    out.putByte(98);
  }

  /** ` <token>`: an opaque comes back as it came. */
  private putToken(buf: Uint8Array, i: number): void {
    const out = this.host.out;
    const s = this.host.starts[i];
    out.putByte(32);
    out.putBytes(buf, s, this.host.ends[i] - s);
  }

  /** Ends a status line whose code is written: the O and k flags, in request order, and CRLF. */
  private endStatus(buf: Uint8Array, first: number): void {
    const { starts, ntokens, out } = this.host;
    for (let i = first; i < ntokens; i++) {
      const c = buf[starts[i]];
      if (c === 79) this.putToken(buf, i);
      else if (c === 107) this.putKey(buf);
    }
    out.putByte(13);
    out.putByte(10);
  }

  /**
   * With --cluster, hands the request to the key's owner when that is another node (a quiet one
   * as such: see cluster/reply-shape.ts); null when the key is this node's.
   */
  private forwarded(buf: Uint8Array, kind: ReplyKind, dataStart = 0, dataEnd = 0): Step | null {
    const k = kind !== ReplyKind.MetaDebug && this.has(113 /* q */) ? quietKind(kind) : kind;
    return this.host.forwardMeta(buf, this.key, this.keyOff, this.keyLen, k, dataStart, dataEnd);
  }

  /**
   * prepare() for the commands without a data block, then the route: Done when an error line was
   * answered, the forwarding step when another node owns the key, null to serve it here.
   */
  private begin(buf: Uint8Array, flagError: Uint8Array | null, kind: ReplyKind): Step | null {
    const error = this.prepare(buf, 2, flagError);
    if (error !== null) {
      this.host.out.put(error);
      return Step.Done;
    }
    return this.forwarded(buf, kind);
  }

  // ---- mg ----

  private get(buf: Uint8Array): Step {
    const begun = this.begin(buf, null, ReplyKind.MetaGet);
    if (begun !== null) return begun;
    if (this.ctx.virtualKey !== null && hasColon(this.key, this.keyOff, this.keyLen)) {
      const step = this.virtualGet(buf);
      if (step !== null) return step;
    }
    if (this.getLockFree(buf)) return Step.Done;
    const store = this.ctx.store;
    store.lock.lock();
    try {
      this.getLocked(buf);
    } finally {
      store.lock.unlock();
    }
    return Step.Done;
  }

  /**
   * An `mg` that changes nothing (no N, R or T; a hit that needs no LRU move, a key not stale),
   * answered without the store lock as `get` answers hot keys (Store.peek between readBegin and
   * readValid). False, with nothing written or counted, when it must be done under the lock.
   */
  private getLockFree(buf: Uint8Array): boolean {
    if (this.has(78 /* N */) || this.has(82 /* R */) || this.has(84 /* T */)) return false;
    const { store, counters } = this.ctx;
    const out = this.host.out;
    const token = store.lock.readBegin();
    if (token === -1) return false;
    const mark = out.length;
    try {
      const it = store.peek(this.key, this.keyOff, this.keyLen);
      // A stale item's first reader wins the recache, which is a write.
      if (it === PEEK_NEEDS_LOCK || (it !== 0 && store.hasBit(it, STALE))) return false;
      if (it === 0) this.answerMiss(buf);
      else this.answerHit(buf, it, false);
      if (store.lock.readValid(token)) {
        counters.get_lock_free++;
        counters.cmd_get++;
        if (it === 0) counters.get_misses++;
        else counters.get_hits++;
        return true;
      }
    } catch {
      // A read that raced a writer may follow a half-written link anywhere; the locked read decides.
    }
    out.length = mark;
    return false;
  }

  private getLocked(buf: Uint8Array): void {
    const { store, counters } = this.ctx;
    let it = store.find(this.key, this.keyOff, this.keyLen);
    let created = false;
    if (it === 0 && this.has(78 /* N */)) {
      // Vivify: an empty item whose creator wins the recache. Its TTL is set where N stands
      // among the flags, as memcached does (`t N30` shows -1, `N30 t` shows 30).
      if (store.store(StoreMode.Add, this.key, this.keyOff, this.keyLen, 0, 0, EMPTY, 0, 0, 0) === StoreResult.Stored) {
        it = store.find(this.key, this.keyOff, this.keyLen);
        if (this.has(69 /* E */)) store.assignCas(it, this.newCas);
        if (this.has(98 /* b */)) store.setBits(it, KEY_BINARY, true);
        created = true;
      }
    }
    const touching = this.has(84 /* T */);
    if (touching) counters.cmd_touch++;
    else counters.cmd_get++;
    if (it === 0) {
      if (touching) counters.touch_misses++;
      else counters.get_misses++;
      this.answerMiss(buf);
      return;
    }
    if (touching) counters.touch_hits++;
    else counters.get_hits++;
    this.answerHit(buf, it, created);
    if (!this.has(117 /* u */)) store.bump(it);
  }

  private answerMiss(buf: Uint8Array): void {
    if (this.has(113 /* q */)) return;
    this.host.out.put(R_EN);
    this.endStatus(buf, 2);
  }

  /** The reply to an mg hit, doing what its flags ask (T, N, R and a stale win write). */
  private answerHit(buf: Uint8Array, it: number, created: boolean): void {
    const store = this.ctx.store;
    const { out, starts, ntokens } = this.host;
    // h and l answer what was true before this request.
    const fetched = store.wasFetched(it);
    const idle = store.idleSecondsOf(it);
    const winSent = store.hasBit(it, WIN_SENT);
    const stale = store.hasBit(it, STALE);
    const vlen = store.valueLength(it);
    const withValue = this.has(118 /* v */);
    let won = false;
    if (withValue) {
      out.put(R_VA);
      out.putDecimal(vlen);
    } else out.put(R_HD);
    // Flags act and answer in the order they came (`t T30` shows the TTL before the touch).
    for (let i = 2; i < ntokens; i++) {
      switch (buf[starts[i]]) {
        case 78: // N
          if (created) {
            store.setExpiry(it, this.vivifyTtl);
            won = true;
          }
          break;
        case 82: {
          // R: win when the TTL left is below the token
          const expiry = store.expiryOf(it);
          if (!winSent && !created && expiry !== 0 && expiry < store.clock.expiryFor(this.recacheTtl)) won = true;
          break;
        }
        case 115: // s
          this.putNumberFlag(115, vlen);
          break;
        case 102: // f
          this.putNumberFlag(102, store.flagsOf(it));
          break;
        case 108: // l
          this.putNumberFlag(108, idle);
          break;
        case 104: // h
          this.putNumberFlag(104, fetched ? 1 : 0);
          break;
        case 107: // k
          this.putItemKey(it);
          break;
        default:
          this.commonFlag(buf, i, it);
      }
    }
    // Z before X and W, so that no reply carries both W and Z.
    if (winSent) this.putFlag(90);
    if (stale) {
      this.putFlag(88);
      if (!winSent) won = true;
    }
    if (won) {
      this.putFlag(87);
      store.setBits(it, WIN_SENT, true);
    }
    out.reserve(vlen + 4);
    out.bytes[out.length++] = 13;
    out.bytes[out.length++] = 10;
    if (withValue) {
      out.length += store.copyValueTo(it, out.bytes, out.length);
      out.bytes[out.length++] = 13;
      out.bytes[out.length++] = 10;
    }
  }

  /** The flags mg and ma treat alike, flag token i of the request: T acts; t, c and O answer. */
  private commonFlag(buf: Uint8Array, i: number, it: number): void {
    const store = this.ctx.store;
    switch (buf[this.host.starts[i]]) {
      case 84: // T
        store.setExpiry(it, this.newTtl);
        break;
      case 116: // t
        this.putTtl(store.expiryOf(it));
        break;
      case 99: // c
        this.putNumberFlag(99, store.casOf(it));
        break;
      case 79: // O
        this.putToken(buf, i);
        break;
    }
  }

  /**
   * ` t<seconds left>`, -1 for none. A TTL that a T earlier in the request already ended shows
   * as memcached prints it, wrapped to an unsigned 32-bit number.
   */
  private putTtl(expiry: number): void {
    const out = this.host.out;
    out.putByte(32);
    out.putByte(116);
    if (expiry === 0) out.putAscii("-1");
    else out.putDecimal((expiry - this.ctx.store.clock.now) >>> 0);
  }

  private putFlag(c: number): void {
    this.host.out.putByte(32);
    this.host.out.putByte(c);
  }

  private putNumberFlag(c: number, n: number): void {
    this.putFlag(c);
    this.host.out.putDecimal(n);
  }

  /**
   * `mg` on a virtual key: the Lua method runs as for `get`, and its VALUE block becomes the meta
   * reply. Null when the key is not a virtual one after all.
   */
  private virtualGet(buf: Uint8Array): Step | null {
    const { counters, virtualKey } = this.ctx;
    const t0 = performance.now();
    const reply = virtualKey!(latin1String(this.key, this.keyOff, this.keyOff + this.keyLen));
    this.host.spentInLua(performance.now() - t0);
    if (reply === null) return null;
    counters.cmd_get++;
    const host = this.host;
    const withValue = this.has(118 /* v */);
    const quiet = this.has(113 /* q */);
    const binary = this.has(98 /* b */);
    // What the reply needs of the request line: the key token and the flag tokens, as bytes.
    const from = host.starts[1];
    const request = buf.subarray(from, host.ends[host.ntokens - 1]);
    if (reply instanceof Promise) {
      const copy = request.slice();
      host.deliver(
        reply.then(
          (bytes) => {
            const target = new OutputBuffer(bytes.length + copy.length + 32);
            this.countVirtual(bytes);
            virtualReply(target, bytes, copy, withValue, quiet, binary);
            return target.bytes.subarray(0, target.length);
          },
          (e: unknown) => enc(`SERVER_ERROR ${(e as Error).message ?? e}\r\n`),
        ),
      );
      return Step.Wait;
    }
    this.countVirtual(reply);
    this.ctx.madeGarbage(reply.length);
    virtualReply(host.out, reply, request, withValue, quiet, binary);
    return Step.Done;
  }

  private countVirtual(reply: Uint8Array): void {
    if (reply.length > 0 && reply[0] === 86 /* V */) this.ctx.counters.get_hits++;
    else if (reply.length === 0) this.ctx.counters.get_misses++;
  }

  // ---- ms ----

  private set(buf: Uint8Array, nl: number, end: number): Step {
    const host = this.host;
    const out = host.out;
    if (host.ntokens < 3) {
      out.put(R.R_BAD_FORMAT);
      return Step.Done;
    }
    const vlen = parseSigned(buf, host.starts[2], host.ends[2]);
    if (Number.isNaN(vlen) || vlen < 0 || vlen > 0x7ffffffd) {
      out.put(R.R_BAD_FORMAT);
      return Step.Done;
    }
    // From here the data block's length is known: a refused request discards it.
    let error = this.prepare(buf, 3, null);
    const mode = this.mode;
    if (error === null && mode !== 0 && mode !== 83 && mode !== 69 && mode !== 65 && mode !== 80 && mode !== 82) error = R_MS_MODE;
    const { store, counters } = this.ctx;
    if (error === null && HEADER_BYTES + this.keyLen + vlen > store.maxItemBytes) {
      counters.cmd_set++;
      // As memcached: a value that cannot be stored does not leave an older one behind.
      store.lock.hold(() => store.delete(this.key, this.keyOff, this.keyLen));
      error = R.R_TOO_LARGE;
    }
    if (error !== null) {
      out.put(error);
      host.swallowLeft = vlen + 2;
      return Step.Done;
    }
    const dataStart = host.frameData(buf, nl, end, vlen);
    if (dataStart === DATA_INCOMPLETE) return Step.NeedMore;
    if (dataStart === DATA_BAD_CHUNK) {
      out.put(R.R_BAD_CHUNK);
      return Step.Done;
    }
    const forwarded = this.forwarded(buf, ReplyKind.MetaSet, dataStart, host.next);
    if (forwarded !== null) return forwarded;
    store.lock.lock();
    try {
      this.setLocked(buf, dataStart, vlen);
    } finally {
      store.lock.unlock();
    }
    return Step.Done;
  }

  private setLocked(buf: Uint8Array, dataStart: number, vlen: number): void {
    const { store } = this.ctx;
    const { out, starts, ntokens } = this.host;
    const result = this.storeValue(buf, dataStart, vlen);
    if (result === StoreResult.NoMemory) {
      out.put(R.R_NO_MEMORY);
      return;
    }
    const stored = result === StoreResult.Stored;
    const binary = this.has(98 /* b */);
    // The stored item is looked up again only for the flags that need it.
    const needsItem = binary || this.has(69 /* E */) || this.has(99 /* c */) || this.has(115 /* s */);
    const it = stored && needsItem ? store.find(this.key, this.keyOff, this.keyLen) : 0;
    if (it !== 0 && this.has(69 /* E */)) store.assignCas(it, this.newCas);
    if (it !== 0 && binary) store.setBits(it, KEY_BINARY, true);
    if (stored && this.has(113 /* q */)) return;
    out.put(result === StoreResult.Stored ? R_HD : result === StoreResult.Exists ? R_EX : result === StoreResult.NotFound ? R_NF : R_NS);
    for (let i = 3; i < ntokens; i++) {
      switch (buf[starts[i]]) {
        case 79: // O
          this.putToken(buf, i);
          break;
        case 107: // k
          this.putKey(buf);
          break;
        case 99: // c: 0 when nothing was stored
          this.putNumberFlag(99, it === 0 ? 0 : store.casOf(it));
          break;
        case 115: // s: the stored value's size (after an append, the whole value)
          if (it !== 0) this.putNumberFlag(115, store.valueLength(it));
          break;
      }
    }
    out.putByte(13);
    out.putByte(10);
  }

  /** The store call ms's mode and flags make; Stored, NotStored, Exists, NotFound or NoMemory. */
  private storeValue(data: Uint8Array, dataStart: number, vlen: number): StoreResult {
    const { store, counters } = this.ctx;
    const key = this.key;
    const off = this.keyOff;
    const len = this.keyLen;
    const flags = this.clientFlags;
    const ttl = this.has(84 /* T */) ? this.newTtl : 0;
    const withCas = this.has(67 /* C */);
    switch (this.mode) {
      case 69: // E: add (add with a CAS works as add)
        return store.store(StoreMode.Add, key, off, len, flags, ttl, data, dataStart, vlen, 0);
      case 65: // A, P: append, prepend; N vivifies a miss with the data as the value
      case 80: {
        const existing = store.find(key, off, len);
        if (existing === 0) {
          if (!this.has(78 /* N */)) return StoreResult.NotStored;
          return store.store(StoreMode.Set, key, off, len, flags, this.vivifyTtl, data, dataStart, vlen, 0);
        }
        if (withCas && store.casOf(existing) !== this.compareCas) return StoreResult.Exists;
        const result = store.store(this.mode === 65 ? StoreMode.Append : StoreMode.Prepend, key, off, len, 0, 0, data, dataStart, vlen, 0);
        // As memcached: an append past the item size limit is not stored, the old value kept.
        return result === StoreResult.TooLarge ? StoreResult.NotStored : result;
      }
    }
    if (!withCas) return store.store(this.mode === 82 ? StoreMode.Replace : StoreMode.Set, key, off, len, flags, ttl, data, dataStart, vlen, 0);
    // S or R with a CAS: as the cas command, but `I` lets an older CAS through as a stale value.
    const existing = store.find(key, off, len);
    if (existing === 0) {
      counters.cas_misses++;
      return StoreResult.NotFound;
    }
    const current = store.casOf(existing);
    if (current === this.compareCas) {
      counters.cas_hits++;
      return store.store(StoreMode.Set, key, off, len, flags, ttl, data, dataStart, vlen, 0);
    }
    if (!this.has(73 /* I */) || this.compareCas > current) {
      counters.cas_badval++;
      return StoreResult.Exists;
    }
    // The stale value keeps the item's expiry and whether a win was already sent.
    const expiry = store.expiryOf(existing);
    const winSent = store.hasBit(existing, WIN_SENT);
    const result = store.store(StoreMode.Set, key, off, len, flags, expiry, data, dataStart, vlen, 0);
    if (result === StoreResult.Stored) {
      const it = store.find(key, off, len);
      store.setBits(it, STALE, true);
      store.setBits(it, WIN_SENT, winSent);
    }
    return result;
  }

  // ---- md ----

  private remove(buf: Uint8Array): Step {
    const begun = this.begin(buf, R_INVALID_OR_DUPLICATE, ReplyKind.MetaDelete);
    if (begun !== null) return begun;
    const out = this.host.out;
    const store = this.ctx.store;
    let code: Uint8Array;
    store.lock.lock();
    try {
      code = this.removeLocked();
    } finally {
      store.lock.unlock();
    }
    // Quiet mode hides the nominal replies, HD and NF.
    if ((code === R_HD || code === R_NF) && this.has(113 /* q */)) return Step.Done;
    out.put(code);
    this.endStatus(buf, 2);
    return Step.Done;
  }

  private removeLocked(): Uint8Array {
    const { store, counters } = this.ctx;
    const key = this.key;
    const off = this.keyOff;
    const len = this.keyLen;
    const it = store.find(key, off, len);
    if (it === 0 || (this.has(67 /* C */) && store.casOf(it) !== this.compareCas)) {
      counters.delete_misses++;
      return it === 0 ? R_NF : R_EX;
    }
    const newCas = this.has(69 /* E */) ? this.newCas : undefined;
    if (this.has(73 /* I */)) {
      // Invalidate: keep the value, mark it stale for the next mg to win its recache.
      if (this.has(84 /* T */)) store.setExpiry(it, this.newTtl);
      store.setBits(it, STALE, true);
      store.setBits(it, WIN_SENT, false);
      store.assignCas(it, newCas);
      return R_HD;
    }
    counters.delete_hits++;
    if (this.has(120 /* x */)) {
      // Remove the value, keep the item: an empty value with the same flags and expiry.
      const result = store.store(StoreMode.Set, key, off, len, store.flagsOf(it), store.expiryOf(it), EMPTY, 0, 0, 0);
      if (result !== StoreResult.Stored) return R.R_NO_MEMORY;
      store.assignCas(store.find(key, off, len), newCas);
      return R_HD;
    }
    store.delete(key, off, len);
    return R_HD;
  }

  // ---- ma ----

  private arithmetic(buf: Uint8Array): Step {
    const out = this.host.out;
    const error = this.prepare(buf, 2, R_INVALID_OR_DUPLICATE);
    if (error !== null) {
      out.put(error);
      return Step.Done;
    }
    const mode = this.mode;
    if (mode !== 0 && mode !== 73 && mode !== 43 && mode !== 68 && mode !== 45) {
      out.put(R_MA_MODE);
      return Step.Done;
    }
    const forwarded = this.forwarded(buf, ReplyKind.MetaArithmetic);
    if (forwarded !== null) return forwarded;
    const store = this.ctx.store;
    store.lock.lock();
    try {
      this.arithmeticLocked(buf, mode === 68 || mode === 45);
    } finally {
      store.lock.unlock();
    }
    return Step.Done;
  }

  private arithmeticLocked(buf: Uint8Array, decr: boolean): void {
    const { store, counters } = this.ctx;
    const { out, starts, ntokens } = this.host;
    const key = this.key;
    const off = this.keyOff;
    const len = this.keyLen;
    const quiet = this.has(113 /* q */);
    let it = store.find(key, off, len);
    let value: bigint;
    let created = false;
    if (it === 0) {
      const digits = this.has(78 /* N */) ? new TextEncoder().encode(this.initial.toString()) : null;
      // The TTL is set where N stands among the flags, as in mg.
      const stored = digits !== null && store.store(StoreMode.Add, key, off, len, 0, 0, digits, 0, digits.length, 0) === StoreResult.Stored;
      if (!stored) {
        if (digits !== null) out.put(R.R_NO_MEMORY);
        else {
          if (decr) counters.decr_misses++;
          else counters.incr_misses++;
          if (quiet) return;
          out.put(R_NF);
          this.endStatus(buf, 2);
        }
        return;
      }
      it = store.find(key, off, len);
      if (this.has(98 /* b */)) store.setBits(it, KEY_BINARY, true);
      created = true;
      value = this.initial;
    } else if (store.valueLength(it) === 0) {
      // As memcached: an empty value is refused before the CAS is compared.
      out.put(R.R_NON_NUMERIC);
      return;
    } else if (this.has(67 /* C */) && this.compareCas !== 0 && store.casOf(it) !== this.compareCas) {
      // C0 compares nothing in ma, as in memcached.
      out.put(R_EX);
      this.endStatus(buf, 2);
      return;
    } else {
      const result = store.delta(key, off, len, !decr, this.delta);
      if (result === DeltaResult.NonNumeric) {
        out.put(R.R_NON_NUMERIC);
        return;
      }
      if (result === DeltaResult.NoMemory) {
        out.put(R_DELTA_NO_MEMORY);
        return;
      }
      if (decr) counters.decr_hits++;
      else counters.incr_hits++;
      it = store.find(key, off, len);
      value = store.lastDelta;
    }
    if (this.has(69 /* E */)) store.assignCas(it, this.newCas);
    const start = out.length;
    const withValue = this.has(118 /* v */);
    const digits = value.toString();
    if (withValue) {
      out.put(R_VA);
      out.putDecimal(digits.length);
    } else out.put(R_HD);
    for (let i = 2; i < ntokens; i++) {
      switch (buf[starts[i]]) {
        case 78: // N
          if (created) store.setExpiry(it, this.vivifyTtl);
          break;
        case 107: // k
          this.putKey(buf);
          break;
        default:
          this.commonFlag(buf, i, it);
      }
    }
    out.putByte(13);
    out.putByte(10);
    if (withValue) {
      out.putAscii(digits);
      out.putByte(13);
      out.putByte(10);
    }
    // Quiet mode hides an update's reply whole, its value included; a creation is still
    // answered, as memcached does.
    if (quiet && !created) out.length = start;
  }

  // ---- me ----

  /** `me <key> [b]`: the item's metadata, as memcached prints it; a slab-free store has one class. */
  private debug(buf: Uint8Array): Step {
    const host = this.host;
    const out = host.out;
    // me takes a bare `b` after the key, not a flag list: only that is read.
    const binary = host.ntokens > 2 && host.ends[2] - host.starts[2] === 1 && buf[host.starts[2]] === 98;
    const s = host.starts[1];
    const tokenLen = host.ends[1] - s;
    let key = buf;
    let off = s;
    let len = tokenLen;
    if (binary) {
      len = decodeBase64(buf, s, s + tokenLen, this.decoded);
      if (len <= 0) {
        out.put(len === -2 ? R.R_BAD_FORMAT : R_BAD_KEY_ENCODING);
        return Step.Done;
      }
      key = this.decoded;
      off = 0;
    } else if (len > KEY_MAX_BYTES) {
      out.put(R.R_BAD_FORMAT);
      return Step.Done;
    }
    this.key = key;
    this.keyOff = off;
    this.keyLen = len;
    const forwarded = this.forwarded(buf, ReplyKind.MetaDebug);
    if (forwarded !== null) return forwarded;
    const store = this.ctx.store;
    store.lock.lock();
    try {
      const it = store.find(key, off, len);
      if (it === 0) {
        out.put(R_EN_LINE);
        return Step.Done;
      }
      const expiry = store.expiryOf(it);
      out.putAscii("ME ");
      out.putBytes(buf, s, tokenLen);
      out.putAscii(` exp=${expiry === 0 ? -1 : expiry - store.clock.now} la=${store.idleSecondsOf(it)} cas=${store.casOf(it)}`);
      out.putAscii(` fetch=${store.wasFetched(it) ? "yes" : "no"} cls=1 size=${store.bytesOf(it)}\r\n`);
    } finally {
      store.lock.unlock();
    }
    return Step.Done;
  }
}

/**
 * Writes the meta reply to `mg` on a virtual key from the script's reply: its first VALUE block
 * becomes `VA <n>` (or `HD` without v), no block is a miss (`EN`), an error line stays as it is.
 * `request` is the key token and the flag tokens; k, O, s and f (0, as `get` answers) are honoured.
 */
function virtualReply(out: OutputBuffer, reply: Uint8Array, request: Uint8Array, withValue: boolean, quiet: boolean, binary: boolean): void {
  if (reply.length > 0 && reply[0] !== 86 /* V */) {
    out.put(reply);
    return;
  }
  let dataStart = 0;
  let size = 0;
  if (reply.length > 0) {
    let cr = 0;
    while (cr < reply.length && reply[cr] !== 13) cr++;
    let digits = cr;
    while (digits > 0 && reply[digits - 1] !== 32) digits--;
    for (let i = digits; i < cr; i++) size = size * 10 + (reply[i] - 48);
    dataStart = cr + 2;
  } else if (quiet) return;
  const hit = reply.length > 0;
  if (!hit) out.put(R_EN);
  else if (withValue) {
    out.put(R_VA);
    out.putDecimal(size);
  } else out.put(R_HD);
  const keyEnd = request.indexOf(32) < 0 ? request.length : request.indexOf(32);
  for (let i = keyEnd; i < request.length; ) {
    while (i < request.length && request[i] === 32) i++;
    const s = i;
    while (i < request.length && request[i] !== 32) i++;
    if (s === i) break;
    const c = request[s];
    if (c === 79) {
      out.putByte(32);
      out.putBytes(request, s, i - s);
    } else if (c === 107) {
      out.putByte(32);
      out.putByte(107);
      out.putBytes(request, 0, keyEnd);
      if (binary) out.putAscii(" b");
    } else if (hit && c === 115) {
      out.putAscii(" s");
      out.putDecimal(size);
    } else if (hit && c === 102) out.putAscii(" f0");
  }
  out.putByte(13);
  out.putByte(10);
  if (hit && withValue) {
    out.putBytes(reply, dataStart, size);
    out.putByte(13);
    out.putByte(10);
  }
}

const BASE64_ALPHABET = new TextEncoder().encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

/** Appends src[0, len) to out as standard padded base64. */
function encodeBase64(src: Uint8Array, len: number, out: OutputBuffer): void {
  for (let i = 0; i < len; i += 3) {
    const b1 = i + 1 < len ? src[i + 1] : 0;
    const b2 = i + 2 < len ? src[i + 2] : 0;
    const bits = (src[i] << 16) | (b1 << 8) | b2;
    out.putByte(BASE64_ALPHABET[bits >>> 18]);
    out.putByte(BASE64_ALPHABET[(bits >>> 12) & 63]);
    out.putByte(i + 1 < len ? BASE64_ALPHABET[(bits >>> 6) & 63] : 61);
    out.putByte(i + 2 < len ? BASE64_ALPHABET[bits & 63] : 61);
  }
}

const BASE64_VALUES = (() => {
  const table = new Int8Array(256).fill(-1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < 64; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
})();

/**
 * Decodes standard padded base64 buf[s, e) into `dst` (KEY_MAX_BYTES long). Returns the byte
 * count; 0 or -1 when the text is not base64; -2 when the key would be longer than dst.
 */
function decodeBase64(buf: Uint8Array, s: number, e: number, dst: Uint8Array): number {
  const len = e - s;
  if (len === 0 || len % 4 !== 0) return -1;
  let pad = 0;
  if (buf[e - 1] === 61) pad = buf[e - 2] === 61 ? 2 : 1;
  const n = (len / 4) * 3 - pad;
  if (n > dst.length) return -2;
  let at = 0;
  for (let i = s; i < e; i += 4) {
    const last = i + 4 === e;
    const v0 = BASE64_VALUES[buf[i]];
    const v1 = BASE64_VALUES[buf[i + 1]];
    const v2 = last && pad === 2 ? 0 : BASE64_VALUES[buf[i + 2]];
    const v3 = last && pad >= 1 ? 0 : BASE64_VALUES[buf[i + 3]];
    if ((v0 | v1 | v2 | v3) < 0) return -1;
    const bits = (v0 << 18) | (v1 << 12) | (v2 << 6) | v3;
    dst[at++] = bits >>> 16;
    if (at < n) dst[at++] = (bits >>> 8) & 0xff;
    if (at < n) dst[at++] = bits & 0xff;
  }
  return n;
}
