/**
 * The bundled set and map methods (put, delete, exist, get, count, the listings, union and
 * intersection) and quota:addandcheck, served in JS without entering Lua: a Lua call costs
 * several microseconds before the method does anything, a hash lookup here a fraction of one,
 * and a listing is sorted and written into its reply once. Same objects, same
 * replies: the object is the same append log core.lua reads and writes (marshal pairs, a nil
 * value removes a key), decoded once per thread and kept up to date by (version, length) through
 * readLog, so this cache, the Lua states' caches and other threads all see one object in the
 * arena. Runs under the objects lock, as a Lua call does.
 *
 * Only for the bundled types user scripts have not changed (IntactTypes): a user script may
 * replace or wrap a bundled method (set.put = ...), and then every call of that type must go to
 * Lua. Anything this module does not expect (a missing argument, a value that is not a string, a
 * nested table, an exception) is left to Lua too, which runs the call from the start.
 *
 * The common calls (one member, a count, a quota check) are also served straight from the
 * request bytes into the connection's output (serve): no key string, no reply array.
 */
import { latin1Bytes, latin1String, writeLatin1 } from "../latin1.ts";
import type { OutputBuffer } from "../protocol/output.ts";
import type { ObjectLogs } from "./object-logs.ts";
import { ScriptFailure } from "./script-runtime.ts";
import type { ObjectStoreAccess } from "./store-access.ts";

type Value = string | number | boolean;

interface Entry {
  version: number;
  length: number;
  /**
   * Members of a set (value 1), fields of a map (their values). A removed key stays, undefined,
   * until the object is compacted: JavaScriptCore's Map slows down in proportion to the times
   * one key was deleted and added again, until it rehashes.
   */
  members: Map<string, Value | undefined>;
  /** Keys with a value. */
  count: number;
  /** Pairs in the log: `count` of them live, the rest replaced or removed. */
  records: number;
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

/** The methods serve takes from the bytes; the rest (listings, new, reset...) come by handle. */
const SERVED_METHODS: Readonly<Record<NativeType, readonly string[]>> = {
  set: ["exist", "put", "delete", "count", "exists"],
  map: ["get", "put", "delete", "count"],
  quota: ["addandcheck"],
};

const MAGIC = 0x8e;
const T_NIL = 0;
const T_BOOLEAN = 1;
const T_NUMBER = 3;
const T_STRING = 4;
const CR = 13;
const LF = 10;
const COLON = 58;
const VALUE_SPACE = latin1Bytes("VALUE ");
/** Dead pairs tolerated beyond the live ones before a compaction (as core.lua). */
const COMPACT_SLACK = 8;
const MAX_ENTRIES = 256;
/** Amounts served here: whole numbers that stay exact as doubles, as quota.lua's finiteDecimal reads them. */
const WHOLE_AMOUNT = /^\d{1,15}$/;

/** Thrown by decodePairs for a log it does not read (left to Lua). */
class NotFlat extends Error {}

/** What one call's reply is: a value for a VALUE block, a whole reply (a listing), a failure, or null (left to Lua). */
type Reply = string | Uint8Array | ScriptFailure | null;

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
    // Segments as dispatch.lua splits them: every ':' splits, a trailing ':' adds nothing.
    const c1 = key.indexOf(":");
    const type = nativeType(key.substring(0, c1));
    if (type === null || (types.intactTypes & TYPE_BIT[type]) === 0) return null;
    const c2 = key.indexOf(":", c1 + 1);
    if (c2 < 0) return null;
    const objectKey = segmentAt(key, c2 + 1);
    if (objectKey === undefined) return null;
    const call = this.call;
    call.key = key;
    call.type = type;
    call.method = key.substring(c1 + 1, c2);
    call.skey = `\x01${type}$${objectKey}`;
    call.arg = segmentAt(key, nextSegment);
    call.value = call.arg === undefined ? undefined : segmentAt(key, nextSegment);
    if (type === "map" && call.value === undefined && key.endsWith(":")) call.value = "";
    const reply = this.attempt();
    if (reply === null || reply instanceof ScriptFailure || reply instanceof Uint8Array) return reply;
    return valueBlock(key, reply);
  }

  /**
   * The call of the key buf[k, k + klen) when it is one of SERVED_METHODS of an intact type,
   * parsed from the bytes and its VALUE block written into out: SERVED; NOT_SERVED, nothing
   * written, for any other key or call (handle or Lua then take it); the failure once a change
   * is stored.
   */
  serve(buf: Uint8Array, k: number, klen: number, out: OutputBuffer, types: IntactTypes): number | ScriptFailure {
    const end = k + klen;
    const type = typeAt(buf, k, end);
    if (type === null || (types.intactTypes & TYPE_BIT[type]) === 0) return NOT_SERVED;
    const methodStart = k + type.length + 1;
    const methodEnd = colonAt(buf, methodStart, end);
    const method = methodEnd < 0 ? null : servedMethod(type, buf, methodStart, methodEnd);
    if (method === null || methodEnd + 1 >= end) return NOT_SERVED;
    const objectEnd = colonAt(buf, methodEnd + 1, end);
    const call = this.call;
    call.key = "";
    call.type = type;
    call.method = method;
    call.skey = this.storageKey(type, buf, methodEnd + 1, objectEnd < 0 ? end : objectEnd);
    call.arg = objectEnd < 0 ? undefined : byteSegmentAt(buf, objectEnd + 1, end);
    call.value = call.arg === undefined ? undefined : byteSegmentAt(buf, nextSegment, end);
    if (type === "map" && call.value === undefined && buf[end - 1] === COLON) call.value = "";
    const reply = this.attempt();
    if (reply === null || reply instanceof ScriptFailure) return reply ?? NOT_SERVED;
    // A value: the listings, the only calls that answer whole blocks, are not among SERVED_METHODS.
    putValueBlock(out, buf, k, klen, reply as string);
    return SERVED;
  }

  /** The call in progress (one at a time: nothing here waits), as handle or serve parsed it. */
  private readonly call = {
    /** The virtual key (handle only: the listings serve leaves to it name it in their reply). */
    key: "",
    type: "set" as NativeType,
    method: "",
    skey: "",
    /** The second set of a union or intersection, "" when none. */
    skey2: "",
    arg: undefined as string | undefined,
    value: undefined as string | undefined,
  };

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
    const { type, method, skey, arg, value } = this.call;
    if (type === "quota") return this.quotaMethod(skey, method, arg);
    if (type === "set") return this.setMethod(skey, method, arg);
    return this.mapMethod(skey, method, arg, value);
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
    this.recentSkey = `\x01${type}$${latin1Slice(buf, from, to)}`;
    return this.recentSkey;
  }

  private setMethod(skey: string, method: string, element: string | undefined): Reply {
    if (method === "getall") return this.listing(skey, "keys");
    if (method === "union" || method === "intersection") return element === undefined ? null : this.combine(skey, method, element);
    if (method !== "count" && (element === undefined || (method !== "put" && method !== "delete" && method !== "exist" && method !== "exists"))) return null;
    const entry = this.take(skey);
    if (entry === null) return "ERROR_CACHE_MISS";
    let reply: string;
    let failure: ScriptFailure | null = null;
    if (method === "count") reply = String(entry.count);
    else if (method === "exist" || method === "exists") reply = entry.members.get(element!) !== undefined ? "EXISTS" : "NOT_FOUND";
    else {
      reply = "SUCCESS";
      const has = entry.members.get(element!) !== undefined;
      if (method === "put" && !has) failure = this.change(skey, entry, element!, 1, false);
      else if (method === "delete" && has) failure = this.change(skey, entry, element!, undefined, true);
    }
    if (failure !== null) {
      this.drop(skey);
      return failure;
    }
    this.keep(skey, entry);
    return reply;
  }

  private mapMethod(skey: string, method: string, field: string | undefined, value: string | undefined): Reply {
    if (method === "getkeys") return this.listing(skey, "keys");
    if (method === "getvalues") return this.listing(skey, "values");
    if (method === "getall") return this.listing(skey, "pairs");
    if (method !== "count" && (field === undefined || (method !== "put" && method !== "delete" && method !== "get"))) return null;
    const entry = this.take(skey);
    if (entry === null) return "ERROR_CACHE_MISS";
    let reply = "SUCCESS";
    let failure: ScriptFailure | null = null;
    const current = method === "count" ? undefined : entry.members.get(field!);
    if (method === "count") reply = String(entry.count);
    else if (method === "get") {
      if (current !== undefined && typeof current !== "string") {
        this.keep(skey, entry);
        return null;
      }
      reply = current === undefined ? "NOT_FOUND" : `${field} : ${current}`;
    } else if (method === "put" && current !== value) failure = this.change(skey, entry, field!, value, current !== undefined);
    else if (method === "delete" && current !== undefined) failure = this.change(skey, entry, field!, undefined, true);
    if (failure !== null) {
      this.drop(skey);
      return failure;
    }
    this.keep(skey, entry);
    return reply;
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
    const members = entry.members;
    const keys: string[] = [];
    for (const [k, v] of members) {
      if (v === undefined) continue;
      if (kind !== "keys" && typeof v !== "string") return null;
      keys.push(k);
    }
    keys.sort();
    const key = this.call.key;
    if (kind === "keys") return linesBlock(key, keys);
    return linesBlock(key, keys.map(kind === "values" ? (k) => members.get(k) as string : (k) => `${k} : ${members.get(k)}`));
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
    for (const [k, v] of a.members) if (v !== undefined && (method === "union" || b.members.get(k) !== undefined)) out.push(k);
    if (method === "union") for (const [k, v] of b.members) if (v !== undefined && a.members.get(k) === undefined) out.push(k);
    return linesBlock(this.call.key, out.sort());
  }

  /**
   * quota:addandcheck within the current window, by a whole amount (quota.lua). A new window, a
   * fractional or invalid amount, and reset are left to Lua.
   */
  private quotaMethod(skey: string, method: string, amount: string | undefined): Reply {
    if (method !== "addandcheck" || (amount !== undefined && !WHOLE_AMOUNT.test(amount))) return null;
    const entry = this.take(skey);
    if (entry === null) return "ERROR_CACHE_MISS";
    const count = entry.members.get("count");
    const limit = entry.members.get("limit");
    const expiresAt = entry.members.get("expiresAt");
    if (typeof count !== "number" || typeof limit !== "number" || typeof expiresAt !== "number" || Math.floor(this.now() / 1000) >= expiresAt) {
      this.keep(skey, entry);
      return null;
    }
    const n = amount === undefined ? 1 : Number(amount);
    if (count + n > limit) {
      this.keep(skey, entry);
      return "QUOTA_EXCEEDED";
    }
    const failure = this.change(skey, entry, "count", count + n, true);
    if (failure !== null) {
      this.drop(skey);
      return failure;
    }
    this.keep(skey, entry);
    return "QUOTA_OK";
  }

  /**
   * Applies key = value (undefined removes it; `had`: whether the key has a value now) and
   * appends it to the object's log, or stores the object compacted when the log is mostly dead.
   * On failure the entry is dropped (the store still has the object as it was).
   */
  private change(skey: string, entry: Entry, k: string, v: string | number | undefined, had: boolean): ScriptFailure | null {
    const members = entry.members;
    members.set(k, v);
    entry.count += (v !== undefined ? 1 : 0) - (had ? 1 : 0);
    entry.records++;
    const changes = this.changeCount();
    const seconds = this.clockSeconds();
    let state = null;
    if (entry.records - entry.count <= entry.count + COMPACT_SLACK) {
      state = this.logs.append(skey, entry.version, entry.length, encodePair(k, v));
      if (state === 0) return new ScriptFailure("out of memory storing object");
    }
    if (state === null) {
      // Compaction, or the item changed under this call (evicted meanwhile): store it whole.
      // Replaced values leave no key behind; only removed ones do.
      if (members.size !== entry.count) entry.members = live(members);
      state = this.logs.store(skey, encodeWhole(entry.members));
      if (state === 0) return new ScriptFailure("out of memory storing object");
      entry.records = entry.count;
    }
    entry.version = state.version;
    entry.length = state.length;
    this.seen(entry, changes, seconds);
    this.stored = true;
    return null;
  }

  /**
   * The entry of the object, up to date with the store, or null when it is missing. The entry
   * stays in the map while in use (deleting and adding one key again and again slows a
   * JavaScriptCore Map down), but out of cachedBytes until keep; a call that does not keep it
   * drops it.
   */
  private take(skey: string): Entry | null {
    let entry = this.cache.get(skey);
    if (entry !== undefined) {
      this.cachedBytes -= entry.length;
      // Nothing in the store changed since the entry was last seen to match: no need to look (nor
      // to tell the LRU of this read: the read that last looked did, and nothing ran since).
      if (entry.changes !== -1 && entry.changes === this.changeCount() && entry.seconds === this.clockSeconds()) return entry;
    }
    const changes = this.changeCount();
    const seconds = this.clockSeconds();
    const read = this.logs.read(skey, entry?.version ?? -1, entry?.length ?? 0);
    if (read === null) {
      if (entry !== undefined) this.cache.delete(skey);
      return null;
    }
    if (read.from === 0) {
      if (read.bytes[0] !== MAGIC) throw new NotFlat();
      entry = { version: read.version, length: read.length, members: new Map(), count: 0, records: 0, changes: -1, seconds: 0 };
      decodePairs(read.bytes, 1, entry);
    } else if (read.length > entry!.length) {
      decodePairs(read.bytes, 0, entry!);
      entry!.length = read.length;
    }
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
    if (entry.length > this.budgetBytes) {
      if (cached !== undefined) this.cache.delete(skey);
      return;
    }
    if ((cached === undefined && this.cache.size >= MAX_ENTRIES) || this.cachedBytes + entry.length > this.budgetBytes) {
      this.cache.clear();
      this.cachedBytes = 0;
    }
    if (this.cache.get(skey) !== entry) this.cache.set(skey, entry);
    this.cachedBytes += entry.length;
  }

  /** Forgets a taken entry the call did not keep (its object may differ from the store's). */
  private drop(skey: string): void {
    this.cache.delete(skey);
  }
}

function nativeType(name: string): NativeType | null {
  return name === "set" || name === "map" || name === "quota" ? name : null;
}

/** The bundled type whose name and ':' start buf[k, end), or null. */
function typeAt(buf: Uint8Array, k: number, end: number): NativeType | null {
  // Told apart by the first byte, so that one name is compared.
  const type = buf[k] === 115 /* s */ ? "set" : buf[k] === 109 /* m */ ? "map" : buf[k] === 113 /* q */ ? "quota" : null;
  return type !== null && k + type.length < end && buf[k + type.length] === COLON && bytesAre(buf, k, k + type.length, type) ? type : null;
}

/** The method buf[from, to) names when serve takes it for the type: the literal, no new string. */
function servedMethod(type: NativeType, buf: Uint8Array, from: number, to: number): string | null {
  const methods = SERVED_METHODS[type];
  for (let i = 0; i < methods.length; i++) if (bytesAre(buf, from, to, methods[i])) return methods[i];
  return null;
}

function bytesAre(buf: Uint8Array, from: number, to: number, text: string): boolean {
  if (to - from !== text.length || buf[from] !== text.charCodeAt(0)) return false;
  for (let i = 1; i < text.length; i++) if (buf[from + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Where the first ':' in buf[from, end) is, or -1. */
function colonAt(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === COLON) return i;
  return -1;
}

/** Buffer's latin1 decoder, which takes any Uint8Array (Buffer.from to get a Buffer first costs as much again). */
const bufferLatin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, from: number, to: number): string }).latin1Slice;

function latin1Slice(buf: Uint8Array, from: number, to: number): string {
  return bufferLatin1Slice.call(buf, from, to);
}

/** The most bytes `VALUE ` , " 0 ", the length and the two CRLFs of a VALUE block take. */
const BLOCK_FRAME_BYTES = 6 + 3 + 10 + 4;

/** What follows the key in the VALUE block of each constant reply: ` 0 <len>\r\n<value>\r\n`. */
const CONSTANT_TAILS = new Map(
  ["EXISTS", "NOT_FOUND", "SUCCESS", "ERROR_CACHE_MISS", "QUOTA_OK", "QUOTA_EXCEEDED"].map((value) => [value, latin1Bytes(` 0 ${value.length}\r\n${value}\r\n`)]),
);

/** `VALUE <key> 0 <len>\r\n<value>\r\n` into out: the key as the request's bytes, the value a latin1 string. */
function putValueBlock(out: OutputBuffer, buf: Uint8Array, k: number, klen: number, value: string): void {
  out.reserve(BLOCK_FRAME_BYTES + klen + value.length);
  const dst = out.bytes;
  let at = out.length;
  for (let i = 0; i < VALUE_SPACE.length; i++) dst[at++] = VALUE_SPACE[i];
  for (let i = 0; i < klen; i++) dst[at++] = buf[k + i];
  const tail = CONSTANT_TAILS.get(value);
  if (tail !== undefined) {
    for (let i = 0; i < tail.length; i++) dst[at++] = tail[i];
    out.length = at;
    return;
  }
  dst[at++] = 32;
  dst[at++] = 48; // 0
  dst[at++] = 32;
  at = writeDecimal(dst, at, value.length);
  dst[at++] = CR;
  dst[at++] = LF;
  for (let i = 0; i < value.length; i++) dst[at++] = value.charCodeAt(i);
  dst[at++] = CR;
  dst[at++] = LF;
  out.length = at;
}

/** Writes n (a whole number below 10^10) in decimal at `at`; returns where it ends. */
function writeDecimal(dst: Uint8Array, at: number, n: number): number {
  let digits = 1;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
  const end = at + digits;
  for (let i = end - 1, v = n; i >= at; i--, v = Math.floor(v / 10)) dst[i] = 48 + (v % 10);
  return end;
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

/** Where the segment segmentAt or byteSegmentAt last read ends: the next one's start. */
let nextSegment = 0;

/** The segment of key that starts at pos (up to the next ':'), or undefined when pos is past the end. */
function segmentAt(key: string, pos: number): string | undefined {
  if (pos >= key.length) return undefined;
  const colon = key.indexOf(":", pos);
  if (colon < 0) {
    nextSegment = key.length;
    return key.substring(pos);
  }
  nextSegment = colon + 1;
  return key.substring(pos, colon);
}

/** segmentAt of the key bytes buf[..., end). */
function byteSegmentAt(buf: Uint8Array, pos: number, end: number): string | undefined {
  if (pos >= end) return undefined;
  const colon = colonAt(buf, pos, end);
  nextSegment = colon < 0 ? end : colon + 1;
  return latin1Slice(buf, pos, colon < 0 ? end : colon);
}

/** `VALUE <key> 0 <len>\r\n<value>\r\n`, key and value latin1 strings (one character per byte). */
function valueBlock(key: string, value: string): Uint8Array {
  const out = blockFor(key, value.length);
  writeLatin1(out, out.length - value.length - 2, value);
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

function writeU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n & 0xff;
  out[at + 1] = (n >>> 8) & 0xff;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = n >>> 24;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

/** Doubles cross through these (little-endian, as marshal.lua's "<d"; the hosts Bun runs on are). */
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

/** Applies the marshal pairs of bytes from pos on to the entry's members, counting them. */
function decodePairs(bytes: Uint8Array, pos: number, entry: Entry): void {
  const members = entry.members;
  while (pos < bytes.length) {
    if (bytes[pos] !== T_STRING) throw new NotFlat();
    const keyLen = readU32(bytes, pos + 1);
    const k = latin1String(bytes, pos + 5, pos + 5 + keyLen);
    pos += 5 + keyLen;
    const type = bytes[pos];
    let v: Value | undefined;
    if (type === T_STRING) {
      const len = readU32(bytes, pos + 1);
      v = latin1String(bytes, pos + 5, pos + 5 + len);
      pos += 5 + len;
    } else if (type === T_NUMBER) {
      f64Bytes.set(bytes.subarray(pos + 1, pos + 9));
      v = f64[0];
      pos += 9;
    } else if (type === T_BOOLEAN) {
      v = bytes[pos + 1] !== 0;
      pos += 2;
    } else if (type === T_NIL) {
      v = undefined;
      pos += 1;
    } else throw new NotFlat();
    const had = members.get(k) !== undefined;
    members.set(k, v);
    entry.count += (v !== undefined ? 1 : 0) - (had ? 1 : 0);
    entry.records++;
  }
  if (pos !== bytes.length) throw new NotFlat();
}

/** The keys that have a value. */
function live(members: Map<string, Value | undefined>): Map<string, Value | undefined> {
  const out = new Map<string, Value | undefined>();
  for (const [k, v] of members) if (v !== undefined) out.set(k, v);
  return out;
}

/** Bytes of one pair (undefined: the nil that removes the key), as marshal.lua writes it. */
function pairBytes(k: string, v: Value | undefined): number {
  if (typeof v === "string") return 10 + k.length + v.length;
  if (typeof v === "number") return 14 + k.length;
  if (typeof v === "boolean") return 7 + k.length;
  return 6 + k.length;
}

function writePair(out: Uint8Array, at: number, k: string, v: Value | undefined): number {
  out[at] = T_STRING;
  writeU32(out, at + 1, k.length);
  at = writeLatin1(out, at + 5, k);
  if (typeof v === "string") {
    out[at] = T_STRING;
    writeU32(out, at + 1, v.length);
    return writeLatin1(out, at + 5, v);
  }
  if (typeof v === "number") {
    out[at] = T_NUMBER;
    f64[0] = v;
    out.set(f64Bytes, at + 1);
    return at + 9;
  }
  if (typeof v === "boolean") {
    out[at] = T_BOOLEAN;
    out[at + 1] = v ? 1 : 0;
    return at + 2;
  }
  out[at] = T_NIL;
  return at + 1;
}

function encodePair(k: string, v: string | number | undefined): Uint8Array {
  const out = new Uint8Array(pairBytes(k, v));
  writePair(out, 0, k, v);
  return out;
}

/** The whole object as table.marshal writes a flat table (every value set: see live). */
function encodeWhole(members: Map<string, Value | undefined>): Uint8Array {
  let size = 1;
  for (const [k, v] of members) size += pairBytes(k, v);
  const out = new Uint8Array(size);
  out[0] = MAGIC;
  let at = 1;
  for (const [k, v] of members) at = writePair(out, at, k, v);
  return out;
}

