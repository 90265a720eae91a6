/**
 * One client connection's forwarded requests: each is copied to its owner's link at once (many in
 * flight), and its reply takes the slot it opened in the connection's reply queue, so replies go
 * out in request order whatever order peers answer in. The protocol hands requests over and asks
 * what may be sent; it knows nothing of peers.
 */
import { OutputBuffer } from "../protocol/output.ts";
import { R_CRLF, R_END } from "../protocol/replies.ts";
import { type MergeSink, MultigetMerge } from "./multiget.ts";
import type { PeerLink, ReplyTarget } from "./peer-link.ts";
import { isQuiet, MN_REQUEST, ReplyKind } from "./reply-shape.ts";
import { ReplyQueue } from "./reply-queue.ts";
import type { ClusterRouter } from "./router.ts";

/**
 * Forwarded requests one connection may have out; past it the protocol stops parsing until one is
 * answered. With --max-conn-buffer this bounds what a client that never reads makes the node hold.
 */
export const MAX_IN_FLIGHT = 64;

const NO_SLOT = -1;

export class ForwardingSession implements ReplyTarget, MergeSink {
  private readonly queue: ReplyQueue;
  /** Where merged multigets are built before they take their slot. */
  private readonly assembly = new OutputBuffer(4096);
  /** Merges that answered, kept for the next multigets (a merge holds several buffers). */
  private readonly spareMerges: MultigetMerge[] = [];
  /** Forwarded requests not answered yet, noreply ones included. */
  inFlight = 0;
  /** Called when replies came in (the connection may write and parse again). */
  onSettled: (() => void) | null = null;
  /** Queued by the router to be woken (settledLater). */
  settling = false;

  constructor(
    private readonly router: ClusterRouter,
    out: OutputBuffer,
  ) {
    this.queue = new ReplyQueue(out);
  }

  /** No more requests may go out until one is answered. */
  get full(): boolean {
    return this.inFlight >= MAX_IN_FLIGHT;
  }

  /** Replies still to come, in the client's order. */
  get unanswered(): number {
    return this.queue.size;
  }

  /** Bytes of the output that may be sent (everything before the first reply still to come). */
  get sendable(): number {
    return this.queue.sendable;
  }

  /** The first n bytes of the output were sent. */
  consumed(n: number): void {
    this.queue.consumed(n);
  }

  /**
   * Forwards the request src[lineStart, lineEnd) (a line without its CRLF, noreply already taken
   * off) and its data block src[dataStart, dataEnd) to node `owner`. A retrieval's keys are
   * src[keysStart, keysEnd); its reply must name only them.
   */
  forward(owner: number, kind: ReplyKind, noreply: boolean, src: Uint8Array, lineStart: number, lineEnd: number, dataStart: number, dataEnd: number, keysStart: number, keysEnd: number): void {
    const slot = noreply ? NO_SLOT : this.queue.open();
    const link = this.router.link(owner);
    if (link === null) {
      // Answered at once, while the protocol is still parsing: no wake-up.
      const reply = this.router.unavailableReply(owner);
      if (slot !== NO_SLOT) this.queue.fill(slot, reply, 0, reply.length);
      return;
    }
    copyRequest(link, src, lineStart, lineEnd, dataStart, dataEnd);
    // A quiet meta request may get no reply: the owner's MN answers `mn` after it either way.
    if (isQuiet(kind)) link.out.put(MN_REQUEST);
    this.inFlight++;
    link.sent(kind, kind === ReplyKind.Retrieval ? src.slice(keysStart, keysEnd) : null, this, slot);
  }

  /**
   * Forwards the retrieval src[lineStart, lineEnd) of `keyCount` keys, src[keysStart, keysEnd), all
   * owned by `owner`, as it is. When the owner is out its keys are misses (a multiget answers
   * what it can); a single key is answered `unavailable`, as every other command.
   */
  forwardGet(owner: number, src: Uint8Array, lineStart: number, lineEnd: number, keysStart: number, keysEnd: number, keyCount: number): void {
    if (keyCount === 1) return this.forward(owner, ReplyKind.Retrieval, false, src, lineStart, lineEnd, 0, 0, keysStart, keysEnd);
    const slot = this.queue.open();
    const link = this.router.link(owner);
    if (link === null) {
      this.deadOwnerMisses(keyCount);
      this.queue.fill(slot, R_END, 0, R_END.length);
      return;
    }
    copyRequest(link, src, lineStart, lineEnd, 0, 0);
    this.inFlight++;
    const target: ReplyTarget = {
      answered: (_slot, buf, from, to) => this.answered(slot, buf, from, to),
      failed: () => {
        this.deadOwnerMisses(keyCount);
        this.answered(slot, R_END, 0, R_END.length);
      },
    };
    link.sent(ReplyKind.Retrieval, src.slice(keysStart, keysEnd), target, slot);
  }

  /** Starts a multiget across owners whose request line is src[from, to). */
  multiget(src: Uint8Array, from: number, to: number): MultigetMerge {
    const merge = this.spareMerges.pop() ?? new MultigetMerge(this, this.assembly);
    merge.begin(src, from, to);
    return merge;
  }

  released(merge: MultigetMerge): void {
    this.spareMerges.push(merge);
  }

  /** Sends each owner its keys of `merge` as `<prefix> <keys>`, prefix being its line[0, prefixEnd). */
  sendMultiget(merge: MultigetMerge, prefixEnd: number): void {
    const line = merge.line;
    merge.slot = this.queue.open();
    this.inFlight++;
    const byOwner = merge.keysByOwner;
    for (let owner = 0; owner < byOwner.length; owner++) {
      const keys = byOwner[owner];
      if (keys === undefined || keys.length === 0) continue;
      const link = this.router.link(owner);
      if (link === null) {
        merge.failed(owner);
        continue;
      }
      const out = link.out;
      out.putBytes(line, 0, prefixEnd);
      out.putByte(32);
      out.putBytes(keys.bytes, 0, keys.length);
      out.put(R_CRLF);
      link.sent(ReplyKind.Retrieval, keys.bytes.subarray(0, keys.length), merge, owner);
    }
  }

  answered(slot: number, buf: Uint8Array, from: number, to: number): void {
    this.inFlight--;
    if (slot !== NO_SLOT) this.queue.fill(slot, buf, from, to);
    this.router.settledLater(this);
  }

  failed(slot: number, reply: Uint8Array): void {
    this.inFlight--;
    if (slot !== NO_SLOT) this.queue.fill(slot, reply, 0, reply.length);
    this.router.settledLater(this);
  }

  merged(slot: number, reply: Uint8Array, from: number, to: number): void {
    this.answered(slot, reply, from, to);
    // A merge may finish outside a peer's event (a local virtual key answering later, or every
    // owner down while the protocol is still parsing): wake the connection once that is over.
    queueMicrotask(() => this.router.settle());
  }

  deadOwnerMisses(keys: number): void {
    this.router.deadOwnerMisses += keys;
  }

  /** Wakes the connection: replies came in. */
  settle(): void {
    this.onSettled?.();
  }
}

/** Appends the request line src[lineStart, lineEnd), CRLF, and its data block to the link's output. */
function copyRequest(link: PeerLink, src: Uint8Array, lineStart: number, lineEnd: number, dataStart: number, dataEnd: number): void {
  const out = link.out;
  out.putBytes(src, lineStart, lineEnd - lineStart);
  out.put(R_CRLF);
  if (dataEnd > dataStart) out.putBytes(src, dataStart, dataEnd - dataStart);
}
