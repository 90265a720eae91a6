/**
 * The TCP side: Bun.listen, one TextProtocol per connection, one socket write per data event,
 * backpressure (a connection whose unsent output passes --max-conn-buffer stops being read until
 * `drain` empties it), the connection limit and the idle timeout.
 */
import type { Socket, TCPSocketListener } from "bun";
import { AuthTable } from "./auth.ts";
import { parseServerList } from "./cluster/ketama.ts";
import { HealthTable } from "./cluster/peer-health.ts";
import { ClusterRouter } from "./cluster/router.ts";
import type { Config } from "./config.ts";
import { type LatencyRecorder, type ProtocolContext, TextProtocol } from "./protocol/text.ts";
import type { Scripting } from "./scripting/engine.ts";
import { MAX_RELATIVE_EXPTIME } from "./store/clock.ts";
import { StoreObjectAccess } from "./store/object-access.ts";
import { R_TOO_MANY_CONNECTIONS } from "./protocol/replies.ts";
import { type Counters, CounterTable, type StatsSource } from "./stats.ts";
import type { EvictionName } from "./store/policy.ts";
import { createStoreMemory, Store, type StoreMemory } from "./store/store.ts";

interface Connection {
  readonly protocol: TextProtocol;
  paused: boolean;
  /** Waiting in the server's list of replies to write once this turn's data events are parsed. */
  queued: boolean;
  rejected: boolean;
  closed: boolean;
  /** When bytes last arrived, by the idle sweep's coarse clock (for --idle-timeout). */
  lastActive: number;
  /** The client shut down its sending side: answer what it sent, then close. */
  inputEnded: boolean;
}

export interface ServerHooks {
  /** Per-command latency (the metrics endpoint's histograms). */
  latency?: LatencyRecorder | null;
  /** Where scripting reports script load errors and failures. */
  log?: (level: string, msg: string) => void;
  extraStats?: (() => [string, string | number][])[];
  /** Called after the `shutdown` command (when enabled) stopped the server. */
  onShutdown?: () => void;
}

const IDLE_SWEEP_MS = 250;
/**
 * Between requests, the expiry crawler frees a slice of expired items this often, so memory held
 * by dead items comes back without traffic. A slice holds the store lock for tens of microseconds.
 */
const CRAWL_INTERVAL_MS = 100;
const CRAWL_ITEMS_PER_TICK = 1024;
const CRAWL_BUCKETS_PER_TICK = 16384;
/** The longest setTimeout delay; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Input received between two looks at RSS (reading it costs ~10 µs: /proc). */
const GC_CHECK_INPUT_BYTES = 1024 * 1024;
/**
 * The RSS the server steers below is the arena plus this much, or plus what the process held as the
 * server started and RSS_WORKING_BYTES more, whichever is larger (the Lua runtime of -e adds about
 * 16 MiB before any item is stored). Bun's code pages are 17 MiB of an idle server's RSS and about
 * 30 under load, since the program trims them before the servers start (src/code-pages.ts; 36-40
 * MiB untrimmed). 52 MiB instead of the 60 it was before trimming: the hit-ratio peaks
 * (bench/hitrate.ts W1/W2/W4) fell from 126.5-128.9 MiB to 118.6-121.8, and the collections
 * under a 4 KB write flood got rarer (1,552 young ones against 1,979 in one 8 s flood).
 */
const RSS_CEILING_SLACK_BYTES = 52 * 1024 * 1024;
const RSS_WORKING_BYTES = 16 * 1024 * 1024;
/** Input between two collections at least: bounds their cost when RSS cannot get below the ceiling. */
const MIN_INPUT_BETWEEN_GC_BYTES = 1024 * 1024;
/** Input after which the server collects whatever the headroom (a large, part-filled arena). */
const MAX_INPUT_BETWEEN_GC_BYTES = 64 * 1024 * 1024;
/** Input between two full collections at least (see collectAfterGarbage). */
const FULL_GC_MIN_INPUT_BYTES = 4 * 1024 * 1024;

/**
 * What the threads serving one port share: the store, every thread's counters, the count of
 * open connections (-c is one limit for the whole process), and with --cluster the peers' health
 * (so that every thread routes a key to the same node).
 */
export interface ServerMemory {
  readonly store: StoreMemory;
  readonly counters: SharedArrayBuffer;
  readonly connections: SharedArrayBuffer;
  readonly peerHealth: SharedArrayBuffer | null;
}

export function createServerMemory(config: Config, threads: number): ServerMemory {
  return {
    store: createStoreMemory(config.memoryLimitMb * 1024 * 1024, config.eviction as EvictionName, undefined, !config.smallPages),
    counters: CounterTable.create(threads).buffer,
    connections: new SharedArrayBuffer(4),
    peerHealth: config.cluster ? HealthTable.create(parseServerList(config.peers).length).buffer : null,
  };
}

/** Which of the threads serving one port a server is. */
export interface ThreadPlace {
  readonly memory: ServerMemory;
  readonly thread: number;
  readonly threads: number;
}

export class CacheServer implements StatsSource {
  readonly store: Store;
  readonly counterTable: CounterTable;
  /** This thread's row of the counter table. */
  readonly counters: Counters;
  readonly threads: number;
  /** Open connections of every thread, changed with Atomics. */
  private readonly openConnections: Int32Array;
  readonly startedAt: number;
  readonly extraStats: (() => [string, string | number][])[];
  readonly router: ClusterRouter | null;
  private listener: TCPSocketListener<Connection> | undefined;
  private readonly sockets = new Set<Socket<Connection>>();
  /** Connections with replies to write at the end of this event-loop turn (see flushSoon). */
  private readonly toFlush: Socket<Connection>[] = [];
  private readonly context: ProtocolContext;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private scripting: Scripting | null = null;
  private idleTimer: ReturnType<typeof setInterval> | undefined;
  private crawlTimer: ReturnType<typeof setInterval> | undefined;
  /** Date.now() as of the last idle sweep: activity stamps need no more precision than that. */
  private coarseNowMs = Date.now();
  private inputSinceCheck = 0;
  private inputSinceGc = 0;
  private inputSinceFullGc = 0;
  /** See RSS_CEILING_SLACK_BYTES; set as the server starts. */
  private rssCeiling = 0;

  /** Alone (one thread, its own memory) or as `place.thread` of the threads sharing `place.memory`. */
  constructor(
    readonly config: Config,
    private readonly hooks: ServerHooks = {},
    place: ThreadPlace | null = null,
  ) {
    const memory = place?.memory ?? createServerMemory(config, 1);
    this.store = new Store({ memory: memory.store, memoryBytes: 0, maxItemBytes: config.maxItemSizeBytes });
    this.counterTable = new CounterTable(memory.counters);
    this.counters = this.counterTable.rows[place?.thread ?? 0];
    this.threads = place?.threads ?? 1;
    this.openConnections = new Int32Array(memory.connections);
    this.startedAt = this.store.clock.now;
    this.extraStats = [...(hooks.extraStats ?? [])];
    this.router = config.cluster
      ? new ClusterRouter({
          peers: config.peers,
          self: config.self || `${config.listen}:${config.port}`,
          hash: config.hash,
          peerTimeoutMs: config.peerTimeoutMs,
          failureLimit: config.serverFailureLimit,
          autoEject: config.autoEject,
          retryTimeoutMs: config.serverRetryTimeoutMs,
          health: memory.peerHealth ?? undefined,
        })
      : null;
    const router = this.router;
    if (router !== null) this.extraStats.push(() => router.statsLines());
    this.context = {
      store: this.store,
      counters: this.counters,
      config,
      stats: this,
      virtualKey: null,
      router: this.router,
      routingKey: null,
      latency: hooks.latency ?? null,
      auth: config.authFile ? AuthTable.fromFile(config.authFile) : null,
      flushAll: (delay) => this.flushAll(delay),
      madeGarbage: (bytes) => this.collectAfterGarbage(bytes),
      shutdown: () => {
        void this.stop().then(() => this.hooks.onShutdown?.());
      },
    };
  }

  get port(): number {
    return this.listener?.port ?? this.config.port;
  }

  get hostname(): string {
    return this.config.listen;
  }

  /** Loads the Lua objects (with --virtual-keys), then listens. Rejects when it cannot listen. */
  async start(): Promise<void> {
    const config = this.config;
    if (config.virtualKeys && this.scripting === null) {
      const self = this.router?.servers[this.router.selfIndex];
      // Loaded only when asked for: the Lua runtime costs several MiB of RSS a plain cache does not need.
      const { createScripting } = await import("./scripting/engine.ts");
      const scripting = await createScripting({
        store: new StoreObjectAccess(this.store, config.eviction === "gdsf"),
        scriptsDir: config.scriptsDir,
        timeoutMs: config.scriptTimeoutMs,
        memoryMb: config.scriptMemoryMb,
        log: this.hooks.log,
        // Half the forwarding timeout: a virtual key forwarded here from another node answers (nil
        // for a slow peer) before that node gives up on it.
        peerTimeoutMs: Math.max(1, Math.floor(config.peerTimeoutMs / 2)),
        hash: config.hash,
        cluster: self === undefined ? null : { peers: config.peers, self: `${self.host}:${self.port}` },
      });
      this.scripting = scripting;
      this.context.virtualKey = (key) => scripting.handleGetKey(key);
      this.context.nativeKey = (buf, k, klen, out) => scripting.serveNative(buf, k, klen, out);
      this.context.routingKey = (key) => scripting.routingKey(key);
    }
    this.store.clock.start();
    this.rssCeiling = this.store.limitBytes + Math.max(RSS_CEILING_SLACK_BYTES, process.memoryUsage.rss() + RSS_WORKING_BYTES);
    // Bun's socket.timeout() fires on a coarse tick and ignores activity, so sweep ourselves
    // (always: --idle-timeout can be turned on by a reload).
    this.idleTimer = setInterval(() => this.closeIdle(), IDLE_SWEEP_MS);
    this.idleTimer.unref();
    const store = this.store;
    this.crawlTimer = setInterval(() => {
      store.lock.lock();
      try {
        store.crawlExpired(CRAWL_ITEMS_PER_TICK, CRAWL_BUCKETS_PER_TICK);
      } finally {
        store.lock.unlock();
      }
    }, CRAWL_INTERVAL_MS);
    this.crawlTimer.unref();
    const server = this;
    this.listener = Bun.listen<Connection>({
      hostname: this.config.listen,
      port: this.config.port,
      // Every thread listens on the same port; the kernel spreads connections over them.
      reusePort: this.threads > 1,
      // A client may send its requests and shut down its side (printf … | nc): memcached still
      // answers them, so the server closes only once its replies are out.
      allowHalfOpen: true,
      socket: {
        open(socket) {
          server.open(socket);
        },
        data(socket, chunk) {
          const conn = socket.data;
          server.counters.bytes_read += chunk.length;
          server.collectAfterGarbage(chunk.length);
          if (conn.rejected) return;
          conn.lastActive = server.coarseNowMs;
          conn.protocol.feed(chunk);
          server.flushSoon(socket, conn);
        },
        drain(socket) {
          server.flush(socket, socket.data);
        },
        end(socket) {
          socket.data.inputEnded = true;
          server.flush(socket, socket.data);
        },
        close(socket) {
          socket.data.closed = true;
          server.sockets.delete(socket);
          if (!socket.data.rejected) {
            server.counters.curr_connections--;
            Atomics.sub(server.openConnections, 0, 1);
          }
        },
        error(socket, error) {
          server.connectionError(socket, error);
        },
      },
    });
  }

  /** Re-reads the scripts directory (SIGHUP); stored objects survive. Returns load errors. */
  async reloadScripts(): Promise<string[]> {
    return this.scripting === null ? [] : this.scripting.reload();
  }

  /**
   * Graceful stop: stops accepting, lets each connection finish what it has started (a partial
   * request, a forwarded request, unsent replies) and closes it as soon as it is idle; after
   * `timeoutMs` closes whatever is left. Resolves when everything is closed.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.listener?.stop(false);
    const deadline = Date.now() + timeoutMs;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      for (const socket of this.sockets) if (socket.data.protocol.idle) socket.end();
      await Bun.sleep(20);
    }
    await this.stop();
  }

  /** Stops listening and closes every connection. */
  async stop(): Promise<void> {
    this.scripting?.close();
    this.scripting = null;
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    clearInterval(this.idleTimer);
    clearInterval(this.crawlTimer);
    this.store.clock.stop();
    this.listener?.stop(true);
    this.listener = undefined;
    this.router?.close();
    for (const socket of this.sockets) socket.end();
    this.sockets.clear();
  }

  private open(socket: Socket<Connection>): void {
    const rejected = Atomics.add(this.openConnections, 0, 1) >= this.config.connLimit;
    if (rejected) Atomics.sub(this.openConnections, 0, 1);
    const protocol = new TextProtocol(this.context);
    socket.data = { protocol, paused: false, queued: false, rejected, closed: false, lastActive: Date.now(), inputEnded: false };
    protocol.onWake = () => {
      if (!socket.data.closed) this.flush(socket, socket.data);
    };
    protocol.onOutputGrown = () => this.send(socket, protocol);
    this.counters.total_connections++;
    if (rejected) {
      this.counters.rejected_connections++;
      socket.write(R_TOO_MANY_CONNECTIONS);
      socket.end();
      return;
    }
    this.counters.curr_connections++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
  }

  /** Writes what of the replies may go and the socket takes. */
  private send(socket: Socket<Connection>, protocol: TextProtocol): void {
    const sendable = protocol.sendable;
    if (sendable === 0) return;
    const written = socket.write(protocol.out.bytes, 0, sendable);
    if (written > 0) {
      this.counters.bytes_written += written;
      protocol.consume(written);
    }
  }

  /**
   * A data event's replies wait until the event loop has handed over every data event of this
   * turn, then all go out together (`setImmediate` runs after them): reading every ready socket
   * before writing to any was 4 % more 4 KB sets a second (paired runs, README). A connection that
   * is held back, closing or paused is flushed at once, so backpressure acts as before.
   */
  private flushSoon(socket: Socket<Connection>, conn: Connection): void {
    const protocol = conn.protocol;
    if (protocol.blocked || protocol.closing || conn.paused) {
      this.flush(socket, conn);
      return;
    }
    if (conn.queued) return;
    conn.queued = true;
    this.toFlush.push(socket);
    if (this.toFlush.length === 1) setImmediate(this.flushQueued);
  }

  private readonly flushQueued = (): void => {
    const sockets = this.toFlush;
    for (let i = 0; i < sockets.length; i++) {
      const socket = sockets[i];
      const conn = socket.data;
      conn.queued = false;
      if (conn.closed) continue;
      // Outside a socket callback Bun would not route a throw to the error handler: do it here.
      try {
        this.flush(socket, conn);
      } catch (error) {
        this.connectionError(socket, error);
      }
    }
    sockets.length = 0;
  };

  private connectionError(socket: Socket<Connection>, error: unknown): void {
    this.hooks.log?.("warn", `connection error: ${error instanceof Error ? error.message : String(error)}`);
    socket.end();
  }

  /** Writes what the socket takes; parses held-back input while output has room. */
  private flush(socket: Socket<Connection>, conn: Connection): void {
    const protocol = conn.protocol;
    const out = protocol.out;
    const limit = this.config.maxConnBufferBytes;
    for (;;) {
      this.send(socket, protocol);
      if (protocol.blocked && !protocol.waiting && out.length < limit) {
        // Input held back (backpressure or a forwarded reply): go on now that there is room.
        protocol.resume();
        if (out.length > 0) continue;
      }
      break;
    }
    // Stop reading while replies pile up, or while input piles up behind a forwarded request.
    if (out.length >= limit || (protocol.blocked && (!protocol.waiting || protocol.pendingBytes >= limit))) {
      if (!conn.paused) {
        conn.paused = true;
        this.counters.conn_yields++;
        socket.pause();
      }
    } else if (conn.paused) {
      conn.paused = false;
      socket.resume();
    }
    if (out.length === 0 && !protocol.unanswered && (protocol.closing || conn.inputEnded)) socket.end();
  }

  /**
   * Every data event brings a fresh buffer that is garbage once parsed (and every virtual key's
   * reply is garbage once copied out: they count as input here), and the engine does not
   * weigh that memory when deciding to collect (it sizes its budget by the arena, which it counts
   * as live): under heavy value traffic garbage piles up far past the arena. So the server
   * collects itself, more often the closer RSS is to the ceiling (see RSS_CEILING_SLACK_BYTES):
   * after half the remaining headroom has come in as input, but no sooner than 1 MiB and no
   * later than 64 MiB.
   *
   * Those are young-generation collections: the buffers die young, and one takes tens of
   * microseconds where a full collection takes 2-6 ms (with 4 KB sets at ~100 MB/s of input, full
   * ones every 512 KiB took about a fifth of the server's time). Only when RSS stays above the
   * ceiling anyway does a full one run, at most once per FULL_GC_MIN_INPUT_BYTES of input: values
   * that arrive over several data events outlive a young collection, and only a full one frees
   * them (bench/hitrate W1 at -m 64 peaked at 132 MiB with 4 MiB here, 139 MiB with 32 MiB).
   */
  private collectAfterGarbage(bytes: number): void {
    this.inputSinceCheck += bytes;
    if (this.inputSinceCheck < GC_CHECK_INPUT_BYTES) return;
    this.inputSinceGc += this.inputSinceCheck;
    this.inputSinceFullGc += this.inputSinceCheck;
    this.inputSinceCheck = 0;
    const headroom = this.rssCeiling - process.memoryUsage.rss();
    const interval = Math.min(Math.max(headroom / 2, MIN_INPUT_BETWEEN_GC_BYTES), MAX_INPUT_BETWEEN_GC_BYTES);
    if (this.inputSinceGc < interval) return;
    this.inputSinceGc = 0;
    const full = headroom < 0 && this.inputSinceFullGc >= FULL_GC_MIN_INPUT_BYTES;
    if (full) this.inputSinceFullGc = 0;
    Bun.gc(full);
  }

  private closeIdle(): void {
    this.coarseNowMs = Date.now();
    const idleMs = this.config.idleTimeoutSeconds * 1000;
    if (idleMs === 0) return;
    const cutoff = this.coarseNowMs - idleMs;
    for (const socket of this.sockets) {
      const conn = socket.data;
      // A connection waiting on a peer, or with unsent replies, is not idle.
      if (conn.lastActive <= cutoff && !conn.protocol.unanswered && conn.protocol.out.length === 0) socket.end();
    }
  }

  private flushAll(delaySeconds: number): void {
    // As in memcached, a later flush_all, immediate or delayed, replaces a pending delayed one:
    // the store's flush plan says which one is current, whichever thread took it.
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const store = this.store;
    // The delay follows the exptime rules (above 30 days: a unix time, flushing now if it passed).
    const atMs = delaySeconds > MAX_RELATIVE_EXPTIME ? delaySeconds * 1000 : Date.now() + delaySeconds * 1000;
    if (delaySeconds <= 0 || atMs <= Date.now()) {
      store.lock.hold(() => store.flushAll());
      return;
    }
    const plan = store.lock.hold(() => store.planFlush());
    // A timer longer than 2^31 - 1 ms fires at once, so a longer wait is taken in steps.
    const arm = (): void => {
      this.flushTimer = setTimeout(() => {
        if (Date.now() < atMs) return arm();
        this.flushTimer = undefined;
        store.lock.hold(() => store.flushIfPlanned(plan));
      }, Math.min(atMs - Date.now(), MAX_TIMER_MS));
    };
    arm();
  }
}
