/**
 * Server-side routing: which node owns a key (the ketama continuum over --peers), one pipelined
 * link per peer for forwarded requests, each peer's health (peer-health.ts), and the per-peer
 * stats. Link writes are batched: every request queued during one event-loop turn goes out in
 * one write at the end of it. Connections are woken once per batch of replies.
 */
import type { OutputBuffer } from "../protocol/output.ts";
import { isHashName } from "./hash.ts";
import { Continuum, parseServerList, type ServerSpec } from "./ketama.ts";
import { type HealthOptions, HealthTable, type PeerHealth, PeerState } from "./peer-health.ts";
import { type LinkEvents, PeerLink, type ReplyTarget } from "./peer-link.ts";
import { ReplyKind } from "./reply-shape.ts";
import { ForwardingSession } from "./session.ts";

export interface RouterOptions extends HealthOptions {
  peers: string;
  /** This node as written in `peers`. */
  self: string;
  hash: string;
  peerTimeoutMs: number;
  /** The peers' health records shared with this node's other threads (HealthTable); a new table when absent. */
  health?: SharedArrayBuffer;
}

const enc = new TextEncoder();
const VERSION_REQUEST = enc.encode("version\r\n");
/** Pause between probes of a peer that refuses connections (a frozen one costs a timeout each). */
const PROBE_RETRY_MS = 50;

/** One other node: its link, health and counters. */
class Peer implements LinkEvents {
  link: PeerLink | null = null;
  readonly health: PeerHealth;
  forwarded = 0;
  errors = 0;
  readonly label: string;
  readonly unavailable: Uint8Array;
  private probe: PeerLink | null = null;
  private probeTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(
    readonly index: number,
    readonly spec: ServerSpec,
    private readonly router: ClusterRouter,
    private readonly timeoutMs: number,
    health: PeerHealth,
  ) {
    this.health = health;
    this.label = `${spec.host}:${spec.port}`;
    this.unavailable = enc.encode(`SERVER_ERROR peer ${this.label} unavailable\r\n`);
  }

  /** The link to send on, or null while the peer is out. */
  usableLink(): PeerLink | null {
    if (!this.health.up) {
      this.errors++;
      return null;
    }
    if (this.link === null || this.link.dead) this.link = this.newLink();
    this.forwarded++;
    return this.link;
  }

  answered(): void {
    this.health.answered();
  }

  failed(reason: string, requests: number, sentAt: number): void {
    if (this.closed) return;
    this.errors += requests;
    if (!this.health.failed(sentAt)) return;
    this.link?.fail(reason);
    this.link = null;
    if (this.health.state === PeerState.Ejected) {
      this.router.followHealth();
      this.scheduleProbe(Math.max(0, this.health.retryAt - Date.now()));
    } else this.scheduleProbe(0);
  }

  wantsFlush(link: PeerLink): void {
    this.router.flushLater(link);
  }

  settled(): void {
    this.router.settle();
  }

  close(): void {
    this.closed = true;
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.link?.fail("closing");
    this.probe?.fail("closing");
  }

  private newLink(): PeerLink {
    return new PeerLink(`peer ${this.label}`, this.spec.host, this.spec.port, this.timeoutMs, this.unavailable, this);
  }

  /** Asks the peer `version` on a new connection after `delayMs`; the first answer brings it back. */
  private scheduleProbe(delayMs: number): void {
    if (this.closed) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      const events: LinkEvents = { answered() {}, failed() {}, wantsFlush: (link) => this.router.flushLater(link), settled() {} };
      const probe = new PeerLink(`peer ${this.label}`, this.spec.host, this.spec.port, this.timeoutMs, this.unavailable, events);
      const target: ReplyTarget = {
        answered: () => {
          // The peer is back: the probe's connection is done with; forwarding opens its own.
          probe.fail("probe done", true);
          this.probe = null;
          this.health.recovered();
          this.router.followHealth();
        },
        failed: () => {
          if (this.probe !== probe) return;
          this.probe = null;
          this.scheduleProbe(PROBE_RETRY_MS);
        },
      };
      this.probe = probe;
      probe.out.put(VERSION_REQUEST);
      probe.sent(ReplyKind.Version, null, target, 0);
    }, delayMs);
  }
}

export class ClusterRouter {
  readonly continuum: Continuum;
  readonly selfIndex: number;
  /** Keys of multigets answered as misses because their owner was out. */
  deadOwnerMisses = 0;
  private readonly peers: (Peer | null)[];
  private readonly health: HealthTable;
  /** The health table's generation the continuum was last brought in line with. */
  private healthSeen = 0;
  private readonly toFlush: PeerLink[] = [];
  private flushScheduled = false;
  private toSettle: ForwardingSession[] = [];

  constructor(options: RouterOptions) {
    if (!isHashName(options.hash)) throw new Error(`--hash: unknown hash "${options.hash}"`);
    const servers = parseServerList(options.peers);
    if (servers.length === 0) throw new Error("--cluster needs --peers host:port,...");
    this.continuum = new Continuum(servers, options.hash);
    const [selfSpec] = parseServerList(options.self);
    this.selfIndex = selfSpec ? servers.findIndex((s) => s.host === selfSpec.host && s.port === selfSpec.port) : -1;
    if (this.selfIndex < 0) throw new Error(`--self ${options.self || "(unset)"} is not one of --peers`);
    this.health = options.health ? new HealthTable(options.health) : HealthTable.create(servers.length);
    this.peers = servers.map((s, i) => (i === this.selfIndex ? null : new Peer(i, s, this, options.peerTimeoutMs, this.health.peer(i, options))));
    this.followHealth();
  }

  get servers(): readonly ServerSpec[] {
    return this.continuum.servers;
  }

  /** Index of the node owning key[off, off + len) (ejected nodes own nothing). */
  ownerOf(key: Uint8Array, off: number, len: number): number {
    if (this.health.generation !== this.healthSeen) this.followHealth();
    return this.continuum.ownerIndex(key, off, len);
  }

  /** Forwarding state for one client connection whose replies go to `out`. */
  session(out: OutputBuffer): ForwardingSession {
    return new ForwardingSession(this, out);
  }

  /** The link to node `owner` (counted as forwarded), or null while it is down. */
  link(owner: number): PeerLink | null {
    return this.peers[owner]!.usableLink();
  }

  /** The `SERVER_ERROR peer <host:port> unavailable` line of node `owner`. */
  unavailableReply(owner: number): Uint8Array {
    return this.peers[owner]!.unavailable;
  }

  /** `link` has requests to write: they go out together at the end of this turn. */
  flushLater(link: PeerLink): void {
    this.toFlush.push(link);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flushLinks());
  }

  /** `session` got replies: it is woken at the end of the current batch (settle). */
  settledLater(session: ForwardingSession): void {
    if (session.settling) return;
    session.settling = true;
    this.toSettle.push(session);
  }

  /** Wakes the sessions that got replies since the last call. */
  settle(): void {
    if (this.toSettle.length === 0) return;
    const sessions = this.toSettle;
    this.toSettle = [];
    for (const s of sessions) {
      s.settling = false;
      s.settle();
    }
  }

  /**
   * Brings the continuum in line with the shared health records: an ejected peer owns nothing,
   * whichever thread of this node ejected it.
   */
  followHealth(): void {
    this.healthSeen = this.health.generation;
    for (const peer of this.peers) {
      if (peer === null) continue;
      const available = peer.health.state !== PeerState.Ejected;
      if (this.continuum.isAvailable(peer.index) !== available) this.continuum.setAvailable(peer.index, available);
    }
  }

  statsLines(): [string, string | number][] {
    const lines: [string, string | number][] = [
      ["cluster_nodes", this.servers.length],
      ["cluster_self", label(this.servers[this.selfIndex])],
      ["cluster_dead_owner_misses", this.deadOwnerMisses],
    ];
    for (const peer of this.peers) {
      if (peer === null) continue;
      const p = `peer:${peer.label}:`;
      lines.push(
        [`${p}forwarded`, peer.forwarded],
        [`${p}errors`, peer.errors],
        [`${p}state`, peer.health.stateName],
        [`${p}in_flight`, peer.link?.pending ?? 0],
        [`${p}ejections`, peer.health.ejections],
      );
    }
    return lines;
  }

  close(): void {
    for (const peer of this.peers) peer?.close();
  }

  private flushLinks(): void {
    this.flushScheduled = false;
    const links = this.toFlush.splice(0);
    for (const link of links) link.flush();
  }
}

function label(s: ServerSpec): string {
  return `${s.host}:${s.port}`;
}
