/**
 * Server-side routing: decides which node owns a key (the ketama continuum over --peers) and
 * forwards requests for keys owned elsewhere over pooled, pipelined peer connections. A peer
 * that is down or slow answers `SERVER_ERROR peer <host:port> unavailable` within the peer
 * timeout; the peer client retries it with backoff.
 */
import { isHashName } from "./hash.ts";
import { Continuum, parseServerList, type ServerSpec } from "./ketama.ts";
import { PeerClient } from "./peer.ts";

export interface RouterOptions {
  peers: string;
  /** This node as written in `peers`. */
  self: string;
  hash: string;
  peerTimeoutMs: number;
}

interface PeerCounters {
  forwarded: number;
  errors: number;
}

const enc = new TextEncoder();
const PEER_CONNECTIONS = 4;

export class ClusterRouter {
  readonly continuum: Continuum;
  readonly selfIndex: number;
  private readonly clients: (PeerClient | null)[];
  private readonly counters: PeerCounters[];
  private readonly unavailable: Uint8Array[];

  constructor(options: RouterOptions) {
    if (!isHashName(options.hash)) throw new Error(`--hash: unknown hash "${options.hash}"`);
    const servers = parseServerList(options.peers);
    if (servers.length === 0) throw new Error("--cluster needs --peers host:port,...");
    this.continuum = new Continuum(servers, options.hash);
    const [selfSpec] = parseServerList(options.self);
    this.selfIndex = selfSpec ? servers.findIndex((s) => s.host === selfSpec.host && s.port === selfSpec.port) : -1;
    if (this.selfIndex < 0) throw new Error(`--self ${options.self || "(unset)"} is not one of --peers`);
    // Several connections per peer: a client connection has at most one forwarded request out at
    // a time, so its replies stay in order while different clients' requests run in parallel.
    this.clients = servers.map((s, i) =>
      i === this.selfIndex ? null : new PeerClient(s.host, s.port, options.peerTimeoutMs, { connections: PEER_CONNECTIONS }),
    );
    this.counters = servers.map(() => ({ forwarded: 0, errors: 0 }));
    this.unavailable = servers.map((s) => enc.encode(`SERVER_ERROR peer ${label(s)} unavailable\r\n`));
  }

  get servers(): readonly ServerSpec[] {
    return this.continuum.servers;
  }

  /** Index of the node owning key[off, off + len). */
  ownerOf(key: Uint8Array, off: number, len: number): number {
    return this.continuum.ownerIndex(key, off, len);
  }

  /**
   * Sends whole requests to node `owner` and resolves with its replies, byte for byte, or with
   * the `unavailable` error line when the peer is down, slow or breaks the protocol.
   */
  async forward(owner: number, request: Uint8Array): Promise<{ ok: boolean; reply: Uint8Array }> {
    const client = this.clients[owner];
    if (client === null) throw new Error("forward to self");
    this.counters[owner].forwarded++;
    try {
      return { ok: true, reply: await client.request(request) };
    } catch {
      this.counters[owner].errors++;
      return { ok: false, reply: this.unavailable[owner] };
    }
  }

  /** The `unavailable` error line for node `owner`. */
  unavailableReply(owner: number): Uint8Array {
    return this.unavailable[owner];
  }

  statsLines(): [string, string | number][] {
    const lines: [string, string | number][] = [["cluster_nodes", this.servers.length], ["cluster_self", label(this.servers[this.selfIndex])]];
    this.servers.forEach((s, i) => {
      if (i === this.selfIndex) return;
      const p = `peer:${label(s)}:`;
      lines.push([`${p}forwarded`, this.counters[i].forwarded], [`${p}errors`, this.counters[i].errors], [`${p}state`, this.clients[i]!.isDown ? "down" : "up"]);
    });
    return lines;
  }

  close(): void {
    for (const c of this.clients) c?.close();
  }
}

function label(s: ServerSpec): string {
  return `${s.host}:${s.port}`;
}
