/**
 * A multi-key retrieval whose keys live on several nodes: the keys in the client's order, each
 * owner's share sent as one request, and the replies merged back into key order. An owner answers
 * its keys' VALUE blocks in the order they were asked (misses left out), so one cursor per owner
 * finds each key's block. A dead owner's keys are misses; an owner's error line (a failed script)
 * or a local virtual key's error line answers the whole request.
 */
import { OutputBuffer } from "../protocol/output.ts";
import { R_END } from "../protocol/replies.ts";
import type { ReplyTarget } from "./peer-link.ts";

/** Where a merged multiget goes once every part is in. */
export interface MergeSink {
  merged(slot: number, reply: Uint8Array, from: number, to: number): void;
  /** Keys of owners that could not be asked, answered as misses. */
  deadOwnerMisses(keys: number): void;
  /** The merge has answered and nothing refers to it any more: it may serve the next multiget. */
  released(merge: MultigetMerge): void;
}

const LOCAL = -1;
const LATER = -2;

export class MultigetMerge implements ReplyTarget {
  /** This node's VALUE blocks, in key order: the protocol looks its keys up into it. */
  readonly localBlocks = new OutputBuffer(4096);
  /** Each owner's keys (by node index), space-separated, as they are sent; empty for an owner not asked this time. */
  readonly keysByOwner: (OutputBuffer | undefined)[] = [];
  /** A copy of the request line: keys are found in it by offset. */
  private readonly lineCopy = new OutputBuffer(1024);
  slot = -1;
  /** Per key in client order: its owner (LOCAL/LATER for this node), and where it is (in `line`, in localBlocks, or in later). */
  private readonly owners: number[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  /** Virtual keys answered later: their replies by index. */
  private readonly later: Uint8Array[] = [];
  /** Per owner: its reply (null when it could not be asked) and where it is in it. */
  private readonly replies: (Uint8Array | null | undefined)[] = [];
  private readonly replyStarts: number[] = [];
  private readonly replyEnds: number[] = [];
  private waiting = 0;
  private error: Uint8Array | null = null;

  /**
   * `assembly` is a buffer the merged reply is built in (reused: it is copied out at once). A
   * merge is used again and again (the session keeps the released ones): begin() starts each use.
   */
  constructor(
    private readonly sink: MergeSink,
    private readonly assembly: OutputBuffer,
  ) {}

  /** The copy begin() made of the request line, from offset 0 (the buffer may be longer). */
  get line(): Uint8Array {
    return this.lineCopy.bytes;
  }

  /** Starts a multiget whose request line is src[from, to), forgetting the previous one. */
  begin(src: Uint8Array, from: number, to: number): void {
    this.lineCopy.length = 0;
    this.lineCopy.putBytes(src, from, to - from);
    this.localBlocks.length = 0;
    for (const keys of this.keysByOwner) if (keys !== undefined) keys.length = 0;
    this.owners.length = 0;
    this.starts.length = 0;
    this.ends.length = 0;
    this.later.length = 0;
    this.replies.length = 0;
    this.replyStarts.length = 0;
    this.replyEnds.length = 0;
    this.waiting = 0;
    this.error = null;
    this.slot = -1;
  }

  /** The next key is this node's; its VALUE block (nothing for a miss) is localBlocks[start, end). */
  addLocal(start: number): void {
    this.owners.push(LOCAL);
    this.starts.push(start);
    this.ends.push(this.localBlocks.length);
  }

  /** The next key is a virtual key of this node answering later. */
  addLocalLater(part: Promise<Uint8Array>): void {
    const i = this.later.length;
    this.later.push(R_END.subarray(0, 0));
    this.owners.push(LATER);
    this.starts.push(i);
    this.ends.push(i);
    this.waiting++;
    void part.then((bytes) => {
      this.later[i] = bytes;
      this.partDone(bytes.length > 0 && bytes[0] !== 86 /* V */ ? bytes : null);
    });
  }

  /** The next key, line[from, to), belongs to node `owner`. */
  addRemote(owner: number, from: number, to: number): void {
    this.owners.push(owner);
    this.starts.push(from);
    this.ends.push(to);
    let keys = this.keysByOwner[owner];
    if (keys === undefined) keys = this.keysByOwner[owner] = new OutputBuffer(1024);
    if (keys.length === 0) this.waiting++;
    else keys.putByte(32);
    keys.putBytes(this.line, from, to - from);
  }

  answered(owner: number, buf: Uint8Array, from: number, to: number): void {
    // The last part is merged from the peer's buffer as it is; earlier ones are kept.
    const last = this.waiting === 1;
    this.replies[owner] = last ? buf : buf.slice(from, to);
    this.replyStarts[owner] = last ? from : 0;
    this.replyEnds[owner] = last ? to : to - from;
    const endsWithEnd = to - from >= 5 && buf[to - 5] === 69 /* E */ && buf[to - 4] === 78 /* N */ && buf[to - 3] === 68; /* D */
    // An error line ends an owner's reply that is not VALUE*…END: it answers the request.
    this.partDone(endsWithEnd ? null : buf.slice(buf.lastIndexOf(10, to - 2) + 1, to));
  }

  failed(owner: number): void {
    this.replies[owner] = null;
    this.partDone(null);
  }

  private partDone(error: Uint8Array | null): void {
    if (error !== null && this.error === null) this.error = error;
    if (--this.waiting > 0) return;
    if (this.error !== null) this.sink.merged(this.slot, this.error, 0, this.error.length);
    else this.merge();
    this.sink.released(this);
  }

  /** Every part is in: the reply in the client's key order. */
  private merge(): void {
    const out = this.assembly;
    out.length = 0;
    const local = this.localBlocks.bytes;
    let dead = 0;
    for (let i = 0; i < this.owners.length; i++) {
      const owner = this.owners[i];
      if (owner === LOCAL) {
        out.putBytes(local, this.starts[i], this.ends[i] - this.starts[i]);
        continue;
      }
      if (owner === LATER) {
        out.put(this.later[this.starts[i]]);
        continue;
      }
      const reply = this.replies[owner]!;
      if (reply === null) {
        dead++;
        continue;
      }
      const at = this.replyStarts[owner];
      const end = blockFor(reply, at, this.replyEnds[owner], this.line, this.starts[i], this.ends[i]);
      if (end < 0) continue; // a miss
      out.putBytes(reply, at, end - at);
      this.replyStarts[owner] = end;
    }
    out.put(R_END);
    if (dead > 0) this.sink.deadOwnerMisses(dead);
    this.sink.merged(this.slot, out.bytes, 0, out.length);
  }
}

/**
 * The end of the VALUE block at reply[at] (before `to`) when it is for key[ks, ke), else -1. The
 * reply was checked when it arrived: each block is `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
 */
function blockFor(reply: Uint8Array, at: number, to: number, key: Uint8Array, ks: number, ke: number): number {
  if (at >= to || reply[at] !== 86 /* V */) return -1; // END: no block left
  const k = at + 6;
  const len = ke - ks;
  if (reply[k + len] !== 32) return -1;
  for (let j = 0; j < len; j++) if (reply[k + j] !== key[ks + j]) return -1;
  let i = k + len + 1;
  while (reply[i] !== 32) i++; // flags
  let bytes = 0;
  for (i++; reply[i] >= 48 && reply[i] <= 57; i++) bytes = bytes * 10 + (reply[i] - 48);
  while (reply[i] !== 10) i++;
  return i + 1 + bytes + 2;
}
