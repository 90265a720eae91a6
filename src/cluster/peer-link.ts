/**
 * One pipelined connection to a peer for forwarded requests. Requests are copied into one output
 * buffer and written once per event-loop turn (the router flushes); replies are framed and checked
 * against their requests in place (reply-shape.ts) and handed to their targets as views of the
 * receive buffer, valid only during the call.
 *
 * A request with no reply within the timeout is answered `unavailable` at once and left in the
 * queue, abandoned: its reply, if it comes, is dropped, so later requests still line up and are
 * not failed with it. A connection that fails (refused, reset, closed, a reply that does not answer
 * its request, a reply with nothing asked) fails every request still waiting on it.
 */
import type { Socket } from "bun";
import { OutputBuffer } from "../protocol/output.ts";
import { ProtocolError, ReplyKind, replyBodyEnd, type ScanState, scanReply } from "./reply-shape.ts";

/** Who gets a forwarded request's reply. `tag` tells the target's requests apart. */
export interface ReplyTarget {
  answered(tag: number, buf: Uint8Array, from: number, to: number): void;
  failed(tag: number, reply: Uint8Array): void;
}

export interface LinkEvents {
  /** A reply came: the peer answers. */
  answered(): void;
  /**
   * Requests timed out or the connection failed; `requests` were answered `unavailable`. `sentAt`:
   * when the newest request that timed out was sent (for a failed connection, now).
   */
  failed(reason: string, requests: number, sentAt: number): void;
  /** The link has bytes to write at the end of this turn. */
  wantsFlush(link: PeerLink): void;
  /** Targets were answered or failed: the clients they belong to may write now. */
  settled(): void;
}

interface Entry {
  kind: ReplyKind;
  keys: Uint8Array | null;
  deadline: number;
  target: ReplyTarget;
  tag: number;
  abandoned: boolean;
}

const INITIAL_BUFFER = 16 * 1024;
const MAX_IDLE_BUFFER = 1024 * 1024;

export class PeerLink {
  dead = false;
  /** Request bytes not written yet; the caller appends a request, then calls `sent`. */
  readonly out = new OutputBuffer(INITIAL_BUFFER);
  private socket: Socket<undefined> | null = null;
  private entries: Entry[] = [];
  private head = 0;
  /** The first entry not abandoned (entries time out in queue order). */
  private live = 0;
  private buf = new Uint8Array(INITIAL_BUFFER);
  private readPos = 0;
  private writePos = 0;
  private readonly scan: ScanState = { scanned: 0, keyAt: 0, nextKeyAt: 0 };
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly label: string,
    host: string,
    port: number,
    private readonly timeoutMs: number,
    private readonly unavailable: Uint8Array,
    private readonly events: LinkEvents,
  ) {
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open: (socket) => {
          if (this.dead) return void socket.end();
          socket.setNoDelay(true);
          this.socket = socket;
          this.flush();
        },
        data: (_socket, chunk) => this.receive(chunk),
        drain: () => this.flush(),
        end: () => this.fail(`${this.label} closed the connection`, true),
        close: () => this.fail(`connection to ${this.label} closed`, true),
        error: (_socket, err) => this.fail(`${this.label}: ${err.message}`),
        connectError: (_socket, err) => this.fail(`cannot connect to ${this.label}: ${err.message}`),
      },
    }).catch((err: Error) => this.fail(`cannot connect to ${this.label}: ${err.message}`));
  }

  /** Requests waiting for a reply, abandoned ones included. */
  get pending(): number {
    return this.entries.length - this.head;
  }

  /** The request just appended to `out` is answered to target.answered(tag, …). */
  sent(kind: ReplyKind, keys: Uint8Array | null, target: ReplyTarget, tag: number): void {
    this.entries.push({ kind, keys, deadline: Date.now() + this.timeoutMs, target, tag, abandoned: false });
    if (this.timer === null) this.armTimer();
    this.events.wantsFlush(this);
  }

  /** Writes what is queued; what the socket does not take waits for drain. */
  flush(): void {
    const socket = this.socket;
    if (socket === null || this.out.length === 0) return;
    const written = socket.write(this.out.bytes, 0, this.out.length);
    if (written > 0) this.out.consume(written);
  }

  /**
   * Closes the connection and fails every request still waiting on it. A close with nothing
   * waiting (`closedByPeer`) is not held against the peer.
   */
  fail(reason: string, closedByPeer = false): void {
    if (this.dead) return;
    this.dead = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.socket?.end();
    this.socket = null;
    const waiting = this.entries.length - this.live;
    const entries = this.entries;
    const live = this.live;
    this.entries = [];
    this.head = this.live = 0;
    for (let i = live; i < entries.length; i++) entries[i].target.failed(entries[i].tag, this.unavailable);
    if (waiting > 0 || !closedByPeer) this.events.failed(reason, waiting, Date.now());
    this.events.settled();
  }

  private receive(chunk: Uint8Array): void {
    if (this.dead) return;
    this.append(chunk);
    try {
      while (this.readPos < this.writePos) {
        if (this.head === this.entries.length) throw new ProtocolError("reply with no request in flight");
        const entry = this.entries[this.head];
        const end = scanReply(this.buf, this.readPos, this.writePos, entry.kind, entry.keys, this.scan);
        if (end < 0) break;
        this.scan.scanned = this.scan.keyAt = this.scan.nextKeyAt = 0;
        this.head++;
        if (this.live < this.head) this.live = this.head;
        if (!entry.abandoned) entry.target.answered(entry.tag, this.buf, this.readPos, replyBodyEnd(entry.kind, end));
        if (this.dead) return; // the target closed the link (a probe that is done)
        this.readPos = end;
        this.events.answered();
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.fail(`${this.label}: ${err.message}`);
      return;
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = this.live = 0;
    } else if (this.head > 1024) {
      this.entries = this.entries.slice(this.head);
      this.live -= this.head;
      this.head = 0;
    }
    if (this.readPos === this.writePos) {
      this.readPos = this.writePos = 0;
      if (this.buf.length > MAX_IDLE_BUFFER) this.buf = new Uint8Array(INITIAL_BUFFER);
    }
    this.events.settled();
  }

  private append(chunk: Uint8Array): void {
    if (this.writePos + chunk.length > this.buf.length) {
      const live = this.writePos - this.readPos;
      const target = live + chunk.length > this.buf.length ? new Uint8Array(Math.max(this.buf.length * 2, live + chunk.length)) : this.buf;
      target.set(this.buf.subarray(this.readPos, this.writePos), 0);
      this.buf = target;
      this.writePos = live;
      this.readPos = 0;
    }
    this.buf.set(chunk, this.writePos);
    this.writePos += chunk.length;
  }

  /** One timer, aimed at the deadline of the oldest request not abandoned. */
  private armTimer(): void {
    if (this.live === this.entries.length) return;
    const delay = Math.max(0, this.entries[this.live].deadline - Date.now());
    this.timer = setTimeout(() => this.expire(), delay);
  }

  private expire(): void {
    this.timer = null;
    const now = Date.now();
    let expired = 0;
    let deadline = 0;
    while (this.live < this.entries.length && this.entries[this.live].deadline <= now) {
      const entry = this.entries[this.live++];
      entry.abandoned = true;
      entry.target.failed(entry.tag, this.unavailable);
      deadline = entry.deadline;
      expired++;
    }
    if (expired > 0) {
      this.events.failed(`no reply from ${this.label} within the timeout`, expired, deadline - this.timeoutMs);
      this.events.settled();
    }
    if (!this.dead && this.timer === null) this.armTimer();
  }
}
