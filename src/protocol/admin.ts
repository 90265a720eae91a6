/**
 * memcached's tuning commands for its slab allocator and segmented LRU (`slabs`, `lru`,
 * `lru_crawler`), answered as memcached 1.6 answers them. A slab-free store with one exact LRU has
 * nothing for most of them to change: valid forms answer OK, a number that is not one gets the
 * CLIENT_ERROR memcached sends, and everything lives in one class, 1. `lru_crawler metadump`
 * lists the live items as memcached does, in slices of the hash index so that a big cache never
 * holds the store lock for long, and with the connection's output bound as backpressure.
 */
import { latin1String } from "../latin1.ts";
import { Namespace } from "../store/item.ts";
import type { Store } from "../store/store.ts";
import type { MetaHost } from "./meta.ts";
import * as R from "./replies.ts";
import { parseSigned, parseUnsigned, Step } from "./text.ts";

/** Hash buckets one metadump slice walks under the store lock. */
const DUMP_BUCKETS_PER_SLICE = 4096;
/** memcached's MAX_NUMBER_OF_SLAB_CLASSES: class ids are below it. */
const CLASS_ID_LIMIT = 64;
/** The one class a slab-free store reports. */
const ONLY_CLASS = 1;

/** Resolves (to null: nothing to send) on a later turn of the event loop. */
function nextTurn(): Promise<null> {
  return new Promise((resolve) => setImmediate(resolve, null));
}

function isDecimalFloat(text: string): boolean {
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text);
}

/** Bytes memcached's metadump prints as they are; every other byte is %XX. */
function unreserved(b: number): boolean {
  return (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b === 45 || b === 46 || b === 95 || b === 126;
}

const HEX = "0123456789ABCDEF";

export class AdminCommands {
  /** The metadump under way: the bucket its next slice starts at, or -1. */
  private dumpBucket = -1;
  private readonly keyBytes = new Uint8Array(256);

  constructor(
    private readonly store: Store,
    private readonly host: MetaHost,
  ) {}

  private word(buf: Uint8Array, i: number): string {
    return i < this.host.ntokens ? latin1String(buf, this.host.starts[i], this.host.ends[i]) : "";
  }

  /** As memcached's set_noreply_maybe: a last token `noreply` silences the reply. */
  private reply(buf: Uint8Array, line: Uint8Array): void {
    if (this.word(buf, this.host.ntokens - 1) !== "noreply") this.host.out.put(line);
  }

  private replyText(buf: Uint8Array, text: string): void {
    if (this.word(buf, this.host.ntokens - 1) !== "noreply") this.host.out.putAscii(`${text}\r\n`);
  }

  slabs(buf: Uint8Array): Step {
    const n = this.host.ntokens;
    const sub = this.word(buf, 1);
    if (sub === "reassign") {
      const src = n > 2 ? parseSigned(buf, this.host.starts[2], this.host.ends[2]) : Number.NaN;
      const dst = n > 3 ? parseSigned(buf, this.host.starts[3], this.host.ends[3]) : Number.NaN;
      if (Number.isNaN(src) || Number.isNaN(dst)) this.reply(buf, R.R_BAD_FORMAT);
      else if (src === dst) this.replyText(buf, "SAME src and dst class are identical");
      else this.replyText(buf, "BADCLASS invalid src or dst class id");
      return Step.Done;
    }
    if (sub === "automove" && n >= 3) {
      if (this.word(buf, 2) === "ratio") {
        this.reply(buf, n >= 4 && isDecimalFloat(this.word(buf, 3)) ? R.R_OK : R.R_ERROR);
        return Step.Done;
      }
      const level = parseUnsigned(buf, this.host.starts[2], this.host.ends[2]);
      if (level < 0 || level > 0xffffffff) this.reply(buf, R.R_BAD_FORMAT);
      else this.reply(buf, level <= 2 ? R.R_OK : R.R_ERROR);
      return Step.Done;
    }
    this.host.out.put(R.R_ERROR);
    return Step.Done;
  }

  lru(buf: Uint8Array): Step {
    const n = this.host.ntokens;
    const sub = this.word(buf, 1);
    if (sub === "tune" && n >= 6) {
      const hot = parseUnsigned(buf, this.host.starts[2], this.host.ends[2]);
      const warm = parseUnsigned(buf, this.host.starts[3], this.host.ends[3]);
      const hotFactor = this.word(buf, 4);
      const factor = this.word(buf, 5);
      if (hot < 0 || warm < 0 || !isDecimalFloat(hotFactor) || !isDecimalFloat(factor)) this.reply(buf, R.R_ERROR);
      else if (hot + warm > 80) this.replyText(buf, "ERROR hot and warm pcts must not exceed 80");
      else if (Number(hotFactor) <= 0 || Number(factor) <= 0) this.replyText(buf, "ERROR hot/warm age factors must be greater than 0");
      else this.reply(buf, R.R_OK);
      return Step.Done;
    }
    if (sub === "mode" && n >= 3) {
      const mode = this.word(buf, 2);
      this.reply(buf, mode === "flat" || mode === "segmented" ? R.R_OK : R.R_ERROR);
      return Step.Done;
    }
    if (sub === "temp_ttl" && n >= 3) {
      this.reply(buf, Number.isNaN(parseSigned(buf, this.host.starts[2], this.host.ends[2])) ? R.R_ERROR : R.R_OK);
      return Step.Done;
    }
    this.host.out.put(R.R_ERROR);
    return Step.Done;
  }

  lruCrawler(buf: Uint8Array): Step {
    const n = this.host.ntokens;
    const sub = this.word(buf, 1);
    if (n === 3 && sub === "metadump") return this.metadump(buf);
    if (n === 3 && sub === "crawl") {
      this.replyText(buf, this.classesOf(this.word(buf, 2)) === null ? "BADCLASS invalid class id" : "OK");
      return Step.Done;
    }
    if (n === 3 && (sub === "tocrawl" || sub === "sleep")) {
      const value = parseUnsigned(buf, this.host.starts[2], this.host.ends[2]);
      if (value < 0 || value > 0xffffffff) this.reply(buf, R.R_BAD_FORMAT);
      else if (sub === "sleep" && value > 1_000_000) this.replyText(buf, "CLIENT_ERROR sleep must be one second or less");
      else this.reply(buf, R.R_OK);
      return Step.Done;
    }
    if (n === 2 && (sub === "enable" || sub === "disable")) {
      this.reply(buf, R.R_OK);
      return Step.Done;
    }
    this.host.out.put(R.R_ERROR);
    return Step.Done;
  }

  /**
   * Whether a class list (`all` or comma-separated ids) takes in the one class: true, false, or
   * null when the list is not one memcached accepts.
   */
  private classesOf(list: string): boolean | null {
    if (list === "all" || list === "hash") return true;
    let found = false;
    for (const id of list.split(",")) {
      if (!/^\d+$/.test(id) || Number(id) >= CLASS_ID_LIMIT) return null;
      if (Number(id) === ONLY_CLASS) found = true;
    }
    return found;
  }

  /**
   * One slice of `lru_crawler metadump`: one line per live client item, then END once the walk is
   * done. Until then the request's line is handled again after other connections had a turn.
   */
  private metadump(buf: Uint8Array): Step {
    const host = this.host;
    const classes = this.classesOf(this.word(buf, 2));
    if (classes === null) {
      host.out.putAscii("BADCLASS invalid class id\r\n");
      return Step.Done;
    }
    let bucket = this.dumpBucket < 0 ? 0 : this.dumpBucket;
    if (classes) {
      const store = this.store;
      store.lock.lock();
      try {
        bucket = store.forEachInBuckets(Namespace.Client, bucket, DUMP_BUCKETS_PER_SLICE, (it) => this.dumpLine(it));
      } finally {
        store.lock.unlock();
      }
    } else bucket = 0;
    if (bucket === 0) {
      this.dumpBucket = -1;
      host.out.put(R.R_END);
      return Step.Done;
    }
    this.dumpBucket = bucket;
    host.next = host.starts[0];
    host.deliver(nextTurn());
    return Step.Wait;
  }

  /** `key=… exp=… la=… cas=… fetch=… cls=1 size=…`, exp and la as unix times, as memcached prints them. */
  private dumpLine(it: number): void {
    const store = this.store;
    const out = this.host.out;
    const len = store.copyKeyTo(it, this.keyBytes, 0);
    out.putAscii("key=");
    for (let i = 0; i < len; i++) {
      const b = this.keyBytes[i];
      if (unreserved(b)) out.putByte(b);
      else {
        out.putByte(37);
        out.putByte(HEX.charCodeAt(b >> 4));
        out.putByte(HEX.charCodeAt(b & 15));
      }
    }
    const expiry = store.expiryOf(it);
    const now = store.clock.now;
    out.putAscii(` exp=${expiry === 0 ? -1 : expiry} la=${now - store.idleSecondsOf(it)} cas=${store.casOf(it)}`);
    out.putAscii(` fetch=${store.wasFetched(it) ? "yes" : "no"} cls=${ONLY_CLASS} size=${store.bytesOf(it)}\n`);
  }
}
