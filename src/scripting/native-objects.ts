/**
 * The bundled set and map methods (put, delete, exist, get, count, the listings, union and
 * intersection) and quota:addandcheck, served in JS without entering Lua: a Lua call costs
 * several microseconds before the method does anything, a hash lookup here a fraction of one,
 * and a listing is sorted and written into its reply once. Same objects, same
 * replies: the object is the same append log core.lua reads and writes (marshal pairs, a nil
 * value removes a key), copied and indexed once per thread (object-index.ts: typed arrays, no
 * string per member) and kept up to date by (version, length) through readLog, so this cache,
 * the Lua states' caches and other threads all see one object in the arena. Runs under the
 * objects lock, as a Lua call does.
 *
 * Only for the bundled types user scripts have not changed (IntactTypes): a user script may
 * replace or wrap a bundled method (set.put = ...), and then every call of that type must go to
 * Lua. Anything this module does not expect (a missing argument, a value that is not a string, a
 * nested table, an exception) is left to Lua too, which runs the call from the start.
 *
 * The common calls (one member, a count, a quota check) are also served straight from the
 * request bytes into the connection's output (serve): no key string, no member string, no reply
 * array; the member's bytes are looked up and appended as they are.
 */
import { latin1Bytes, latin1Equals, latin1String, writeLatin1 } from "../latin1.ts";
import type { OutputBuffer } from "../protocol/output.ts";
import { R_CRLF, R_VALUE } from "../protocol/replies.ts";
import { ObjectIndex, T_NIL, T_NUMBER, T_STRING, readU32, valueOffset } from "./object-index.ts";
import type { ObjectLogs } from "./object-logs.ts";
import { ScriptFailure } from "./script-runtime.ts";
import type { ObjectStoreAccess } from "./store-access.ts";

interface Entry {
  version: number;
  /** The object's log and its index: a change is applied here, then appended to the item. */
  index: ObjectIndex;
  /**
   * The store's change count and clock second when the entry was last seen to match the item
   * (changes -1: unknown). While both are the same, no thread can have changed the item.
   */
  changes: number;
  seconds: number;
}

/** The bundled types served here, bit i of IntactTypes.intactTypes for NATIVE_TYPES[i]. */
export const NATIVE_TYPES = ["set", "map", "quota"] as const;

/** Which of NATIVE_TYPES user scripts left as bundled (ScriptRuntime); read only for a key of one of them. */
export interface IntactTypes {
  readonly intactTypes: number;
}

type NativeType = (typeof NATIVE_TYPES)[number];
const TYPE_BIT = Object.fromEntries(NATIVE_TYPES.map((type, i) => [type, 1 << i])) as Readonly<Record<NativeType, number>>;

/** serve's answers: nothing written (the string path takes the key), or a VALUE block written. */
export const NOT_SERVED = -1;
export const SERVED = 0;

/** The methods serve takes from the bytes; the rest (listings, union...) come by handle. */
const SERVED_METHODS: Readonly<Record<NativeType, readonly string[]>> = {
  set: ["exist", "put", "delete", "count", "exists"],
  map: ["get", "put", "delete", "count"],
  quota: ["addandcheck"],
};

/** Every method run here; any other (new, reset, a user's) goes to Lua. */
const HANDLED_METHODS: Readonly<Record<NativeType, readonly string[]>> = {
  set: [...SERVED_METHODS.set, "getall", "union", "intersection"],
  map: [...SERVED_METHODS.map, "getkeys", "getvalues", "getall"],
  quota: SERVED_METHODS.quota,
};

const CR = 13;
const LF = 10;
const COLON = 58;
const FIELD_SEPARATOR = latin1Bytes(" : ");
const QUOTA_COUNT = latin1Bytes("count");
const QUOTA_LIMIT = latin1Bytes("limit");
const QUOTA_EXPIRES_AT = latin1Bytes("expiresAt");
/** Dead pairs tolerated beyond the live ones before a compaction (as core.lua). */
const COMPACT_SLACK = 8;
const MAX_ENTRIES = 256;
/** Amounts served here: whole numbers that stay exact as doubles, as quota.lua's finiteDecimal reads them. */
const MAX_AMOUNT_DIGITS = 15;

/**
 * What one call's reply is: a value for a VALUE block (a constant string, or REPLY_BYTES: the
 * bytes the call wrote into replyBytes), a whole reply (a listing), a failure, or null (left to Lua).
 */
type Reply = string | typeof REPLY_BYTES | Uint8Array | ScriptFailure | null;
const REPLY_BYTES = 1;

export class NativeObjects {
  private readonly cache = new Map<string, Entry>();
  private cachedBytes = 0;
  /** Whether the call in progress has stored its change. */
  private stored = false;
  /** The object key serve saw last, and its storage key: a run of calls on one object makes no key string. */
  private recentType = "";
  private recentKey = new Uint8Array(64);
  private recentKeyLength = -1;
  private recentSkey = "";
  /** handle's key, as bytes. */
  private keyBytes = new Uint8Array(256);
  /** A REPLY_BYTES reply's value: replyBytes[0, replyLength). */
  private replyBytes = new Uint8Array(256);
  private replyLength = 0;

  constructor(
    private readonly store: ObjectStoreAccess,
    private readonly logs: ObjectLogs,
    /** Log bytes of the objects kept decoded. */
    private readonly budgetBytes: number,
    /** Milliseconds since the epoch: the clock os.time() reads. */
    private readonly now: () => number,
  ) {}

  /** The reply block, or null when the key is not one of the methods served here (or its type is not intact). */
  handle(key: string, types: IntactTypes): Uint8Array | ScriptFailure | null {
    if (key.length > this.keyBytes.length) this.keyBytes = new Uint8Array(key.length * 2);
    const buf = this.keyBytes;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      // Not a byte string: Lua answers it as it always did.
      if (c > 0xff) return null;
      buf[i] = c;
    }
    if (!this.parse(buf, 0, key.length, types, HANDLED_METHODS)) return null;
    this.call.key = key;
    const reply = this.attempt();
    if (reply === null || reply instanceof ScriptFailure || reply instanceof Uint8Array) return reply;
    if (reply === REPLY_BYTES) return blockOf(key, this.replyBytes, this.replyLength);
    return valueBlock(key, reply);
  }

  /**
   * The call of the key buf[k, k + klen) when it is one of SERVED_METHODS of an intact type,
   * parsed from the bytes and its VALUE block written into out: SERVED; NOT_SERVED, nothing
   * written, for any other key or call (handle or Lua then take it); the failure once a change
   * is stored.
   */
  serve(buf: Uint8Array, k: number, klen: number, out: OutputBuffer, types: IntactTypes): number | ScriptFailure {
    if (!this.parse(buf, k, k + klen, types, SERVED_METHODS)) return NOT_SERVED;
    this.call.key = "";
    const reply = this.attempt();
    if (reply === null || reply instanceof ScriptFailure) return reply ?? NOT_SERVED;
    // A value: the listings, the only calls that answer whole blocks, are not among SERVED_METHODS.
    if (reply === REPLY_BYTES) putValueBlock(out, buf, k, klen, null, this.replyBytes, this.replyLength);
    else putValueBlock(out, buf, k, klen, reply as string, this.replyBytes, 0);
    return SERVED;
  }

  /** The call in progress (one at a time: nothing here waits), as parse read it. */
  private readonly call = {
    /** The virtual key (handle only: the listings serve leaves to it name it in their reply). */
    key: "",
    /** The key's bytes, where the argument and the value are. */
    buf: new Uint8Array(0),
    type: "set" as NativeType,
    method: "",
    skey: "",
    /** The second set of a union or intersection, "" when none. */
    skey2: "",
    /** The argument (member, field, amount, other set) at buf[argFrom, argTo); argFrom -1 when none. */
    argFrom: -1,
    argTo: -1,
    /** A map value at buf[valueFrom, valueTo); valueFrom -1 when none. */
    valueFrom: -1,
    valueTo: -1,
  };

  /**
   * Reads the call of the key buf[k, end) into `call` when its type is intact and its method one
   * of `methods`. Segments as dispatch.lua splits them: every ':' splits, a trailing ':' adds nothing.
   */
  private parse(buf: Uint8Array, k: number, end: number, types: IntactTypes, methods: Readonly<Record<NativeType, readonly string[]>>): boolean {
    const type = typeAt(buf, k, end);
    if (type === null || (types.intactTypes & TYPE_BIT[type]) === 0) return false;
    const methodStart = k + type.length + 1;
    const methodEnd = colonAt(buf, methodStart, end);
    const method = methodEnd < 0 ? null : methodIn(methods[type], buf, methodStart, methodEnd);
    if (method === null || methodEnd + 1 >= end) return false;
    const objectEnd = colonAt(buf, methodEnd + 1, end);
    const call = this.call;
    call.buf = buf;
    call.type = type;
    call.method = method;
    call.skey = this.storageKey(type, buf, methodEnd + 1, objectEnd < 0 ? end : objectEnd);
    call.argFrom = call.argTo = call.valueFrom = call.valueTo = -1;
    if (objectEnd >= 0 && objectEnd + 1 < end) {
      call.argFrom = objectEnd + 1;
      call.argTo = segmentEnd(buf, call.argFrom, end);
      if (call.argTo + 1 < end) {
        call.valueFrom = call.argTo + 1;
        call.valueTo = segmentEnd(buf, call.valueFrom, end);
      }
    }
    if (type === "map" && call.valueFrom < 0 && buf[end - 1] === COLON) call.valueFrom = call.valueTo = end;
    return true;
  }

  /** Runs the call in progress under the objects lock; null when it is left to Lua. */
  private attempt(): Reply {
    const call = this.call;
    call.skey2 = "";
    this.stored = false;
    try {
      return this.store.exclusive(this.run);
    } catch (e) {
      // A log this module does not read, an object too large to store, a store that threw:
      // Lua runs the call again and answers as it always did (its failure, its restart);
      // unless the change is already stored, which must not happen twice.
      this.drop(call.skey);
      if (call.skey2 !== "") this.drop(call.skey2);
      return this.stored ? new ScriptFailure(e instanceof Error ? e.message : String(e)) : null;
    }
  }

  /** Runs the call in progress, objects lock held. */
  private readonly run = (): Reply => {
    const { type, method, skey } = this.call;
    if (type === "quota") return this.quotaMethod(skey);
    if (type === "set") return this.setMethod(skey, method);
    return this.mapMethod(skey, method);
  };

  /** "\x01<type>$<objectKey>" for the object key buf[from, to), made only when it is not the one seen last. */
  private storageKey(type: NativeType, buf: Uint8Array, from: number, to: number): string {
    const length = to - from;
    const recent = this.recentKey;
    let same = this.recentType === type && this.recentKeyLength === length;
    for (let i = 0; same && i < length; i++) same = recent[i] === buf[from + i];
    if (same) return this.recentSkey;
    if (length > recent.length) this.recentKey = new Uint8Array(length);
    this.recentKey.set(buf.subarray(from, to));
    this.recentType = type;
    this.recentKeyLength = length;
    this.recentSkey = `\x01${type}$${latin1String(buf, from, to)}`;
    return this.recentSkey;
  }

  private setMethod(skey: string, method: string): Reply {
    const { buf, argFrom, argTo } = this.call;
    if (method === "getall") return this.listing(skey, "keys");
    if (method === "union" || method === "intersection") return argFrom < 0 ? null : this.combine(skey, method, latin1String(buf, argFrom, argTo));
    if (method !== "count" && argFrom < 0) return null;
    const entry = this.take(skey);
    if (entry === null) return "ERROR_CACHE_MISS";
    const index = entry.index;
    if (method === "count") return this.kept(skey, entry, String(index.count));
    const has = index.typeOf(buf, argFrom, argTo) !== T_NIL;
    if (method === "exist" || method === "exists") return this.kept(skey, entry, has ? "EXISTS" : "NOT_FOUND");
    if (method === "put" && !has) return this.change(skey, entry, index.appendNumber(buf, argFrom, argTo, 1), "SUCCESS");
    if (method === "delete" && has) return this.change(skey, entry, index.appendNil(buf, argFrom, argTo), "SUCCESS");
    return this.kept(skey, entry, "SUCCESS");
  }

  private mapMethod(skey: string, method: string): Reply {
    const { buf, argFrom, argTo, valueFrom, valueTo } = this.call;
    if (method === "getkeys") return this.listing(skey, "keys");
    if (method === "getvalues") return this.listing(skey, "values");
    if (method === "getall") return this.listing(skey, "pairs");
    if (method !== "count" && argFrom < 0) return null;
    const entry = this.take(skey);
    if (entry === null) return "ERROR_CACHE_MISS";
    const index = entry.index;
    if (method === "count") return this.kept(skey, entry, String(index.count));
    const pair = index.find(buf, argFrom, argTo);
    const value = pair < 0 ? -1 : valueOffset(index.log, pair);
    const type = value < 0 ? T_NIL : index.log[value];
    if (method === "get") {
      if (type === T_NIL) return this.kept(skey, entry, "NOT_FOUND");
      // Lua prints numbers and booleans its own way.
      if (type !== T_STRING) return this.kept(skey, entry, null);
      this.replyFieldValue(buf, argFrom, argTo, index.log, value + 5, value + 5 + readU32(index.log, value + 1));
      return this.kept(skey, entry, REPLY_BYTES);
    }
    if (method === "put") {
      if (valueFrom < 0) return this.kept(skey, entry, null);
      if (type === T_STRING && stringIs(index.log, value, buf, valueFrom, valueTo)) return this.kept(skey, entry, "SUCCESS");
      return this.change(skey, entry, index.appendString(buf, argFrom, argTo, buf, valueFrom, valueTo), "SUCCESS");
    }
    if (type !== T_NIL) return this.change(skey, entry, index.appendNil(buf, argFrom, argTo), "SUCCESS");
    return this.kept(skey, entry, "SUCCESS");
  }

  /** "<field> : <value>" into replyBytes, as map.lua's get answers. */
  private replyFieldValue(buf: Uint8Array, from: number, to: number, log: Uint8Array, vFrom: number, vTo: number): void {
    const length = to - from + FIELD_SEPARATOR.length + vTo - vFrom;
    if (length > this.replyBytes.length) this.replyBytes = new Uint8Array(length * 2);
    const out = this.replyBytes;
    let at = 0;
    for (let i = from; i < to; i++) out[at++] = buf[i];
    for (let i = 0; i < FIELD_SEPARATOR.length; i++) out[at++] = FIELD_SEPARATOR[i];
    for (let i = vFrom; i < vTo; i++) out[at++] = log[i];
    this.replyLength = at;
  }

  /**
   * A listing as set.lua and map.lua answer it: the keys sorted in byte order (as Lua's sort),
   * as such, as their values, or as "key : value"; each line followed by CRLF. Left to Lua when a
   * value it lists is not a string (Lua prints numbers its own way).
   */
  private listing(skey: string, kind: "keys" | "values" | "pairs"): Reply {
    const entry = this.take(skey);
    if (entry === null) return "ERROR_CACHE_MISS";
    this.keep(skey, entry);
    const { log } = entry.index;
    const rows: { key: string; value: string }[] = [];
    let flat = true;
    entry.index.forEachLive((pair) => {
      const value = valueOffset(log, pair);
      if (kind !== "keys" && log[value] !== T_STRING) flat = false;
      const valueText = kind === "keys" || !flat ? "" : latin1String(log, value + 5, value + 5 + readU32(log, value + 1));
      rows.push({ key: latin1String(log, pair + 5, value), value: valueText });
    });
    if (!flat) return null;
    rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return linesBlock(this.call.key, rows.map(kind === "keys" ? (r) => r.key : kind === "values" ? (r) => r.value : (r) => `${r.key} : ${r.value}`));
  }

  /** set:union and set:intersection (set.lua): both sets must be stored; the result sorted. */
  private combine(skey: string, method: "union" | "intersection", otherKey: string): Reply {
    const skey2 = `\x01set$${otherKey}`;
    this.call.skey2 = skey2;
    const a = this.take(skey);
    if (a !== null) this.keep(skey, a);
    const b = skey2 === skey ? a : this.take(skey2);
    if (b !== null && skey2 !== skey) this.keep(skey2, b);
    if (a === null || b === null) return "ERROR_CACHE_MISS";
    const out: string[] = [];
    const collect = (from: ObjectIndex, other: ObjectIndex, wanted: boolean) =>
      from.forEachLive((pair) => {
        const keyEnd = valueOffset(from.log, pair);
        if ((other.typeOf(from.log, pair + 5, keyEnd) !== T_NIL) === wanted) out.push(latin1String(from.log, pair + 5, keyEnd));
      });
    if (method === "union") {
      a.index.forEachLive((pair) => out.push(latin1String(a.index.log, pair + 5, valueOffset(a.index.log, pair))));
      collect(b.index, a.index, false);
    } else collect(a.index, b.index, true);
    return linesBlock(this.call.key, out.sort());
  }

  /**
   * quota:addandcheck within the current window, by a whole amount (quota.lua). A new window, a
   * fractional or invalid amount, and reset are left to Lua.
   */
  private quotaMethod(skey: string): Reply {
    const { buf, argFrom, argTo } = this.call;
    const n = argFrom < 0 ? 1 : wholeAmount(buf, argFrom, argTo);
    if (n < 0) return null;
    const entry = this.take(skey);
    if (entry === null) return "ERROR_CACHE_MISS";
    const index = entry.index;
    const count = numberOf(index, QUOTA_COUNT);
    const limit = numberOf(index, QUOTA_LIMIT);
    const expiresAt = numberOf(index, QUOTA_EXPIRES_AT);
    if (count === null || limit === null || expiresAt === null || Math.floor(this.now() / 1000) >= expiresAt) return this.kept(skey, entry, null);
    if (count + n > limit) return this.kept(skey, entry, "QUOTA_EXCEEDED");
    return this.change(skey, entry, index.appendNumber(QUOTA_COUNT, 0, QUOTA_COUNT.length, count + n), "QUOTA_OK");
  }

  /** Keeps the entry (the call changed nothing) and answers reply. */
  private kept(skey: string, entry: Entry, reply: Reply): Reply {
    this.keep(skey, entry);
    return reply;
  }

  /**
   * Stores the change the entry's index has just taken as the pair at `pair` (the log's end
   * before it): appended to the object's log, or the object stored compacted when the log is
   * mostly dead. Answers reply, or the failure (the entry dropped: the store still has the
   * object as it was).
   */
  private change(skey: string, entry: Entry, pair: number, reply: Reply): Reply {
    const index = entry.index;
    const changes = this.changeCount();
    const seconds = this.clockSeconds();
    let state = null;
    if (index.records - index.count <= index.count + COMPACT_SLACK) {
      state = this.logs.append(skey, entry.version, pair, index.log.subarray(pair, index.length));
      if (state === 0) return this.failed(skey);
    }
    if (state === null) {
      // Compaction, or the item changed under this call (evicted meanwhile): store it whole.
      const log = index.compact();
      state = this.logs.store(skey, log.subarray(0, index.length));
      if (state === 0) return this.failed(skey);
    }
    entry.version = state.version;
    this.seen(entry, changes, seconds);
    this.stored = true;
    this.keep(skey, entry);
    return reply;
  }

  private failed(skey: string): ScriptFailure {
    this.drop(skey);
    return new ScriptFailure("out of memory storing object");
  }

  /**
   * The entry of the object, up to date with the store, or null when it is missing. The entry
   * stays in the map while in use, but out of cachedBytes until keep; a call that does not keep
   * it drops it.
   */
  private take(skey: string): Entry | null {
    let entry = this.cache.get(skey);
    if (entry !== undefined) {
      this.cachedBytes -= entry.index.length;
      // Nothing in the store changed since the entry was last seen to match: no need to look (nor
      // to tell the LRU of this read: the read that last looked did, and nothing ran since).
      if (entry.changes !== -1 && entry.changes === this.changeCount() && entry.seconds === this.clockSeconds()) return entry;
    }
    const changes = this.changeCount();
    const seconds = this.clockSeconds();
    const read = this.logs.read(skey, entry?.version ?? -1, entry?.index.length ?? 0);
    if (read === null) {
      if (entry !== undefined) this.cache.delete(skey);
      return null;
    }
    if (read.from === 0) entry = { version: read.version, index: new ObjectIndex(read.bytes), changes: -1, seconds: 0 };
    else if (read.length > entry!.index.length) entry!.index.extend(read.bytes);
    this.seen(entry!, changes, seconds);
    return entry!;
  }

  /**
   * Notes that the entry matches the item as of the store access just made, which began at
   * change count `changes` and clock second `seconds`: when that access is the only lock taken
   * since (the count moved by one), the entry stays valid while count and second stay the same.
   */
  private seen(entry: Entry, changes: number, seconds: number): void {
    const now = this.changeCount();
    entry.changes = changes !== -1 && now === ((changes + 1) | 0) ? now : -1;
    entry.seconds = seconds;
  }

  /** ObjectStoreAccess.changeCount; -1 (unknown) for a store without it. */
  private changeCount(): number {
    return this.store.changeCount?.() ?? -1;
  }

  private clockSeconds(): number {
    return this.store.clockSeconds?.() ?? 0;
  }

  /** Puts the entry back in the cache; starts over empty when the cache is full, as core.lua's. */
  private keep(skey: string, entry: Entry): void {
    const cached = this.cache.get(skey);
    const bytes = entry.index.length;
    if (bytes > this.budgetBytes) {
      if (cached !== undefined) this.cache.delete(skey);
      return;
    }
    if ((cached === undefined && this.cache.size >= MAX_ENTRIES) || this.cachedBytes + bytes > this.budgetBytes) {
      this.cache.clear();
      this.cachedBytes = 0;
    }
    if (this.cache.get(skey) !== entry) this.cache.set(skey, entry);
    this.cachedBytes += bytes;
  }

  /** Forgets a taken entry the call did not keep (its object may differ from the store's). */
  private drop(skey: string): void {
    this.cache.delete(skey);
  }
}

/** The bundled type whose name and ':' start buf[k, end), or null. */
function typeAt(buf: Uint8Array, k: number, end: number): NativeType | null {
  // Told apart by the first byte, so that one name is compared.
  const type = buf[k] === 115 /* s */ ? "set" : buf[k] === 109 /* m */ ? "map" : buf[k] === 113 /* q */ ? "quota" : null;
  return type !== null && k + type.length < end && buf[k + type.length] === COLON && latin1Equals(buf, k, k + type.length, type) ? type : null;
}

/** The one of `methods` buf[from, to) names: the literal, no new string. */
function methodIn(methods: readonly string[], buf: Uint8Array, from: number, to: number): string | null {
  for (let i = 0; i < methods.length; i++) if (latin1Equals(buf, from, to, methods[i])) return methods[i];
  return null;
}

/** Where the first ':' in buf[from, end) is, or -1. */
function colonAt(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === COLON) return i;
  return -1;
}

/** Where the segment that starts at `from` ends: the next ':', or end. */
function segmentEnd(buf: Uint8Array, from: number, end: number): number {
  const colon = colonAt(buf, from, end);
  return colon < 0 ? end : colon;
}

/** Whether the T_STRING value at `value` in log is the bytes buf[from, to). */
function stringIs(log: Uint8Array, value: number, buf: Uint8Array, from: number, to: number): boolean {
  if (readU32(log, value + 1) !== to - from) return false;
  for (let i = from, at = value + 5; i < to; i++, at++) if (log[at] !== buf[i]) return false;
  return true;
}

/** The amount buf[from, to) when it is a whole number of 1 to 15 digits, else -1. */
function wholeAmount(buf: Uint8Array, from: number, to: number): number {
  if (to <= from || to - from > MAX_AMOUNT_DIGITS) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** The number the object holds under key, or null when it holds none (or something else). */
function numberOf(index: ObjectIndex, key: Uint8Array): number | null {
  const pair = index.find(key, 0, key.length);
  return pair >= 0 && index.log[valueOffset(index.log, pair)] === T_NUMBER ? index.numberAt(pair) : null;
}

/** What follows the key in the VALUE block of each constant reply: ` 0 <len>\r\n<value>\r\n`. */
const CONSTANT_TAILS = new Map(
  ["EXISTS", "NOT_FOUND", "SUCCESS", "ERROR_CACHE_MISS", "QUOTA_OK", "QUOTA_EXCEEDED"].map((value) => [value, latin1Bytes(` 0 ${value.length}\r\n${value}\r\n`)]),
);
/** Between a VALUE block's key and its length: no flags. */
const NO_FLAGS = latin1Bytes(" 0 ");

/**
 * `VALUE <key> 0 <len>\r\n<value>\r\n` into out: the key as the request's bytes, the value a
 * latin1 string, or (text null) bytes[0, length).
 */
function putValueBlock(out: OutputBuffer, buf: Uint8Array, k: number, klen: number, text: string | null, bytes: Uint8Array, length: number): void {
  out.put(R_VALUE);
  out.putBytes(buf, k, klen);
  const tail = text === null ? undefined : CONSTANT_TAILS.get(text);
  if (tail !== undefined) {
    out.put(tail);
    return;
  }
  out.put(NO_FLAGS);
  out.putDecimal(text === null ? length : text.length);
  out.put(R_CRLF);
  if (text === null) out.putBytes(bytes, 0, length);
  else out.putAscii(text);
  out.put(R_CRLF);
}

/** A VALUE block whose value is every line followed by CRLF, built once. */
function linesBlock(key: string, lines: readonly string[]): Uint8Array {
  let bytes = 0;
  for (const line of lines) bytes += line.length + 2;
  const out = blockFor(key, bytes);
  let at = out.length - bytes - 2;
  for (const line of lines) {
    at = writeLatin1(out, at, line);
    out[at++] = CR;
    out[at++] = LF;
  }
  return out;
}

/** `VALUE <key> 0 <len>\r\n<value>\r\n`, key and value latin1 strings (one character per byte). */
function valueBlock(key: string, value: string): Uint8Array {
  const out = blockFor(key, value.length);
  writeLatin1(out, out.length - value.length - 2, value);
  return out;
}

/** `VALUE <key> 0 <len>\r\n<value>\r\n`, the key a latin1 string, the value bytes[0, length). */
function blockOf(key: string, bytes: Uint8Array, length: number): Uint8Array {
  const out = blockFor(key, length);
  out.set(bytes.subarray(0, length), out.length - length - 2);
  return out;
}

/** A VALUE block with room for `bytes` bytes of value: its header line and final CRLF written, the value left to fill. */
function blockFor(key: string, bytes: number): Uint8Array {
  const length = String(bytes);
  const out = new Uint8Array(6 + key.length + 3 + length.length + 2 + bytes + 2);
  let at = writeLatin1(out, 0, "VALUE ");
  at = writeLatin1(out, at, key);
  at = writeLatin1(out, at, " 0 ");
  at = writeLatin1(out, at, length);
  out[at++] = CR;
  out[at] = LF;
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}
