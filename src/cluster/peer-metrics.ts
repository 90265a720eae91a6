/**
 * The per-peer `stats` lines (`peer:<host:port>:<name> <value>`) as Prometheus families with a
 * `peer` label: `cacheismo_peer_forwarded{peer="10.0.0.2:11211"} 42`, one family per name, and
 * the state as `cacheismo_peer_state{peer="…",state="up"} 1`.
 */
const PEER_STAT = /^peer:(.+):([a-z_]+)$/;
const COUNTERS = new Set(["forwarded", "errors", "ejections"]);

export class PeerFamilies {
  private readonly families = new Map<string, string[]>();

  /** Takes the stat when it is a per-peer one; false otherwise. */
  add(stat: string, value: string): boolean {
    const m = PEER_STAT.exec(stat);
    if (m === null) return false;
    const [, peer, name] = m;
    const samples = this.families.get(name) ?? [];
    if (name === "state") samples.push(`cacheismo_peer_state{peer="${peer}",state="${value}"} 1`);
    else samples.push(`cacheismo_peer_${name}{peer="${peer}"} ${value}`);
    this.families.set(name, samples);
    return true;
  }

  render(): string[] {
    const out: string[] = [];
    for (const [name, samples] of this.families) {
      out.push(`# TYPE cacheismo_peer_${name} ${COUNTERS.has(name) ? "counter" : "gauge"}`, ...samples);
    }
    return out;
  }
}
