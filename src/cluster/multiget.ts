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
}

const LOCAL = -1;

export class MultigetMerge implements ReplyTarget {
  /** Per key in client order: its owner (LOCAL for this node) and where it is in `line`. */
  private readonly owners: number[] = [];
  private readonly keyStarts: number[] = [];
  private readonly keyEnds: number[] = [];
  private readonly localParts: (Uint8Array | null)[] = [];
  /** Each owner's keys, space-separated, as they are sent. */
  readonly keysByOwner = new Map<number, OutputBuffer>();
  private readonly replies = new Map<number, Uint8Array | null>();
  private waiting = 0;
  private error: Uint8Array | null = null;
  slot = -1;

  /** `line` is a copy of the request line whose keys are added. */
  constructor(
    private readonly line: Uint8Array,
    private readonly sink: MergeSink,
  ) {}

  /** The next key is this node's: its VALUE block (empty for a miss), or a virtual key's later reply. */
  addLocal(part: Uint8Array | Promise<Uint8Array>): void {
    this.owners.push(LOCAL);
    this.keyStarts.push(0);
    this.keyEnds.push(0);
    if (part instanceof Promise) {
      const i = this.localParts.length;
      this.localParts.push(null);
      this.waiting++;
      void part.then((bytes) => {
        this.localParts[i] = bytes;
        this.partDone(bytes.length > 0 && bytes[0] !== 86 /* V */ ? bytes : null);
      });
    } else this.localParts.push(part);
  }

  /** The next key, line[from, to), belongs to node `owner`. */
  addRemote(owner: number, from: number, to: number): void {
    this.owners.push(owner);
    this.keyStarts.push(from);
    this.keyEnds.push(to);
    this.localParts.push(null);
    let keys = this.keysByOwner.get(owner);
    if (keys === undefined) {
      keys = new OutputBuffer(256);
      this.keysByOwner.set(owner, keys);
      this.waiting++;
    } else keys.putByte(32);
    keys.putBytes(this.line, from, to - from);
  }

  answered(owner: number, buf: Uint8Array, from: number, to: number): void {
    const reply = buf.slice(from, to);
    this.replies.set(owner, reply);
    this.partDone(endsWithEnd(reply) ? null : lastLine(reply));
  }

  failed(owner: number): void {
    this.replies.set(owner, null);
    this.partDone(null);
  }

  private partDone(error: Uint8Array | null): void {
    if (error !== null && this.error === null) this.error = error;
    if (--this.waiting > 0) return;
    if (this.error !== null) return this.sink.merged(this.slot, this.error, 0, this.error.length);
    const out = new OutputBuffer(4096);
    const cursors = new Map<number, number>();
    let dead = 0;
    for (let i = 0; i < this.owners.length; i++) {
      const owner = this.owners[i];
      if (owner === LOCAL) {
        out.put(this.localParts[i]!);
        continue;
      }
      const reply = this.replies.get(owner)!;
      if (reply === null) {
        dead++;
        continue;
      }
      const at = cursors.get(owner) ?? 0;
      const end = blockFor(reply, at, this.line, this.keyStarts[i], this.keyEnds[i]);
      if (end < 0) continue; // a miss
      out.putBytes(reply, at, end - at);
      cursors.set(owner, end);
    }
    out.put(R_END);
    if (dead > 0) this.sink.deadOwnerMisses(dead);
    this.sink.merged(this.slot, out.bytes, 0, out.length);
  }
}

function endsWithEnd(reply: Uint8Array): boolean {
  const n = reply.length;
  return n >= 5 && reply[n - 5] === 69 && reply[n - 4] === 78 && reply[n - 3] === 68;
}

/** The error line that ended a reply (its last line). */
function lastLine(reply: Uint8Array): Uint8Array {
  const start = reply.lastIndexOf(10, reply.length - 2) + 1;
  return reply.subarray(start);
}

/**
 * The end of the VALUE block at reply[at] when it is for key[ks, ke), else -1. The reply was
 * checked when it arrived: each block is `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
 */
function blockFor(reply: Uint8Array, at: number, key: Uint8Array, ks: number, ke: number): number {
  if (reply[at] !== 86 /* V */) return -1; // END: no block left
  const k = at + 6;
  const len = ke - ks;
  if (reply[k + len] !== 32) return -1;
  for (let j = 0; j < len; j++) if (reply[k + j] !== key[ks + j]) return -1;
  let i = k + len + 1;
  while (reply[i] !== 32) i++; // flags
  let bytes = 0;
  for (i++; reply[i] >= 48 && reply[i] <= 57; i++) bytes = bytes * 10 + (reply[i] - 48);
  const eol = reply.indexOf(10, i);
  return eol + 1 + bytes + 2;
}
