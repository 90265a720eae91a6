/**
 * Pipelined client for another memcached-protocol node.
 *
 * `request(bytes)` sends whole text-protocol commands and resolves with the
 * bytes of all their replies. Each connection keeps a FIFO of requests in
 * flight; reply boundaries come from framing.ts. A request that has no
 * complete reply within `timeoutMs` of being issued rejects, and so does
 * everything else in flight on that peer: the stream can no longer be trusted
 * to line up. Any such failure (refused connect, timeout, reset, unparseable
 * reply) marks the peer down; while down, requests fail fast, and the first
 * request after the backoff delay (doubling from minBackoffMs to maxBackoffMs,
 * reset by the next reply) reconnects. `bytes` must not be modified until the
 * returned promise settles: they may be sent later, once the socket opens.
 *
 * With `connections` > 1 requests are spread over several sockets, which gives
 * up ordering between requests: a `set` followed by a `get` of the same key
 * may be answered out of order. Keep the default of 1 where that matters.
 */
import type { Socket } from "bun";
import { countReplies, ProtocolError, ReplyScanner } from "./framing.ts";

export type PeerErrorKind = "timeout" | "down" | "closed" | "protocol";

export class PeerError extends Error {
  override name = "PeerError";
  constructor(
    readonly kind: PeerErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface PeerClientOptions {
  connections?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface InFlight {
  replies: number; // replies still to come
  deadline: number;
  resolve: (reply: Uint8Array) => void;
  reject: (err: PeerError) => void;
}

/** Array-backed FIFO with O(1) amortised shift. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  shift(): T | undefined {
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  drain(): T[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}

const INITIAL_BUFFER = 16 * 1024;
const MAX_IDLE_BUFFER = 1024 * 1024; // a larger buffer (grown for a big value) is dropped once idle

class Connection {
  dead = false;
  private socket: Socket<undefined> | null = null;
  private readonly inFlight = new Fifo<InFlight>();
  private unsent: Uint8Array[] = [];
  private buf = new Uint8Array(INITIAL_BUFFER);
  private readPos = 0; // start of the current request's replies
  private scanPos = 0; // start of the reply being scanned
  private writePos = 0;
  private readonly scanner = new ReplyScanner();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly label: string,
    host: string,
    port: number,
    private readonly onReply: () => void,
    private readonly onFailure: (err: PeerError) => void,
  ) {
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open: (socket) => {
          if (this.dead) return void socket.end();
          // Requests are small and latency-bound: no Nagle delay behind an unacknowledged one.
          socket.setNoDelay(true);
          this.socket = socket;
          this.flush();
        },
        data: (_socket, chunk) => this.receive(chunk),
        drain: () => this.flush(),
        end: () => this.fail(new PeerError("closed", `${this.label} closed the connection`)),
        close: () => this.fail(new PeerError("closed", `connection to ${this.label} closed`)),
        error: (_socket, err) => this.fail(new PeerError("down", `${this.label}: ${err.message}`)),
        connectError: (_socket, err) => this.fail(new PeerError("down", `cannot connect to ${this.label}: ${err.message}`)),
      },
    }).catch((err: Error) => this.fail(new PeerError("down", `cannot connect to ${this.label}: ${err.message}`)));
  }

  get pending(): number {
    return this.inFlight.length;
  }

  send(request: Uint8Array, entry: InFlight): void {
    this.inFlight.push(entry);
    this.unsent.push(request);
    if (this.socket !== null) this.flush();
    this.armTimer();
  }

  /**
   * Closes the socket and rejects everything in flight with `err`. An idle
   * connection the peer closed cleanly is just dropped, not held against it.
   */
  fail(err: PeerError): void {
    if (this.dead) return;
    this.dead = true;
    const idleClose = err.kind === "closed" && this.socket !== null && this.inFlight.length === 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.socket?.end();
    this.socket = null;
    for (const entry of this.inFlight.drain()) entry.reject(err);
    if (!idleClose) this.onFailure(err);
  }

  private flush(): void {
    const socket = this.socket;
    if (socket === null) return;
    if (this.unsent.length === 0) return;
    // One write for everything queued; what the socket does not take waits for drain.
    const bytes = this.unsent.length === 1 ? this.unsent[0] : Buffer.concat(this.unsent);
    const written = socket.write(bytes);
    this.unsent = written >= bytes.length ? [] : [bytes.subarray(Math.max(0, written))];
  }

  private receive(chunk: Uint8Array): void {
    if (this.dead) return;
    this.append(chunk);
    try {
      for (let head = this.inFlight.peek(); head !== undefined; head = this.inFlight.peek()) {
        const end = this.scanner.next(this.buf, this.scanPos, this.writePos);
        if (end === -1) return;
        this.scanPos = end;
        if (--head.replies > 0) continue;
        this.inFlight.shift();
        head.resolve(this.buf.slice(this.readPos, end));
        this.readPos = end;
        this.onReply();
      }
      if (this.writePos > this.readPos) throw new ProtocolError("reply with no request in flight");
      this.readPos = this.scanPos = this.writePos = 0;
      if (this.buf.length > MAX_IDLE_BUFFER) this.buf = new Uint8Array(INITIAL_BUFFER);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.fail(new PeerError("protocol", `${this.label}: ${err.message}`));
    }
  }

  private append(chunk: Uint8Array): void {
    if (this.writePos + chunk.length > this.buf.length) {
      const live = this.writePos - this.readPos;
      const target = live + chunk.length > this.buf.length ? new Uint8Array(Math.max(this.buf.length * 2, live + chunk.length)) : this.buf;
      target.set(this.buf.subarray(this.readPos, this.writePos), 0);
      this.buf = target;
      this.scanPos -= this.readPos;
      this.writePos = live;
      this.readPos = 0;
    }
    this.buf.set(chunk, this.writePos);
    this.writePos += chunk.length;
  }

  /** One timer per connection, aimed at the oldest request's deadline. */
  private armTimer(): void {
    const head = this.inFlight.peek();
    if (this.timer !== null || head === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const oldest = this.inFlight.peek();
      if (oldest !== undefined && oldest.deadline <= Date.now()) {
        this.fail(new PeerError("timeout", `no reply from ${this.label} within the timeout`));
      } else {
        this.armTimer();
      }
    }, Math.max(0, head.deadline - Date.now()));
  }
}

export class PeerClient {
  private connections: Connection[] = [];
  private readonly size: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private backoffMs: number;
  private downUntil = 0;
  private closed = false;
  private readonly label: string;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly timeoutMs: number,
    options: PeerClientOptions = {},
  ) {
    this.size = Math.max(1, options.connections ?? 1);
    this.minBackoffMs = options.minBackoffMs ?? 50;
    this.maxBackoffMs = Math.max(this.minBackoffMs, options.maxBackoffMs ?? 5000);
    this.backoffMs = this.minBackoffMs;
    this.label = `peer ${host}:${port}`;
  }

  /** True while failed requests are keeping the peer in its backoff window. */
  get isDown(): boolean {
    return Date.now() < this.downUntil;
  }

  request(bytes: Uint8Array): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new PeerError("closed", `${this.label} client is closed`));
    let replies: number;
    try {
      replies = countReplies(bytes);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return Promise.reject(new PeerError("protocol", err.message));
    }
    if (replies === 0) return Promise.reject(new PeerError("protocol", "empty request"));
    const wait = this.downUntil - Date.now();
    if (wait > 0) return Promise.reject(new PeerError("down", `${this.label} is down; next retry in ${wait} ms`));
    const conn = this.pickConnection();
    return new Promise<Uint8Array>((resolve, reject) => {
      conn.send(bytes, { replies, deadline: Date.now() + this.timeoutMs, resolve, reject });
    });
  }

  /** Closes every connection; requests in flight reject with kind "closed". */
  close(): void {
    this.closed = true;
    const err = new PeerError("closed", `${this.label} client is closed`);
    for (const conn of this.connections) conn.fail(err);
    this.connections = [];
  }

  private pickConnection(): Connection {
    this.connections = this.connections.filter((c) => !c.dead);
    if (this.connections.length < this.size) {
      const conn = new Connection(
        this.label,
        this.host,
        this.port,
        () => (this.backoffMs = this.minBackoffMs), // a reply proves the peer healthy
        (err) => this.markDown(err),
      );
      this.connections.push(conn);
      return conn;
    }
    return this.connections.reduce((a, b) => (b.pending < a.pending ? b : a));
  }

  private markDown(err: PeerError): void {
    if (this.closed) return;
    // A refused connect, timeout or reset is a property of the peer, not of one socket.
    if (!this.isDown) {
      this.downUntil = Date.now() + this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    }
    for (const conn of this.connections) conn.fail(err);
  }
}
