/**
 * The rings behind Lua's `newConsistent(list)`: ketama continuums from
 * src/cluster/ketama.ts with the server's --hash, so a script that asks a ring
 * for a key's server gets the node that server-side routing (--cluster) picks
 * for the same list. Lua holds a ring by its id; the Lua object's finalizer
 * (or deleteConsistent) frees it.
 *
 * Building a continuum costs 40 MD5s per server, and scripts commonly make a
 * ring per request, so rings over the same list share one continuum until one
 * of them changes a server's availability and gets a copy of its own.
 */
import { type HashName, isHashName } from "../cluster/hash.ts";
import { Continuum, ketamaName, parseServerList } from "../cluster/ketama.ts";

interface Ring {
  continuum: Continuum;
  /** Whether `continuum` is shared with other rings over the same list (then never changed). */
  shared: boolean;
}

/** Continuums kept for sharing; the cache starts over when full. */
const SHARED_CONTINUUMS = 64;

/** "host:port", the form findServerForKey answers with. */
export function serverLabel(server: { host: string; port: number }): string {
  return `${server.host}:${server.port}`;
}

export class Rings {
  private readonly rings = new Map<number, Ring>();
  private readonly shared = new Map<string, Continuum>();
  private nextId = 1;

  constructor(private readonly hash: string) {}

  /** A new ring's id; throws when the list is empty or malformed, or --hash is unknown. */
  create(list: string): number {
    let continuum = this.shared.get(list);
    if (continuum === undefined) {
      if (!isHashName(this.hash)) throw new Error(`unknown hash "${this.hash}" (--hash)`);
      const servers = parseServerList(list);
      if (servers.length === 0) throw new Error("empty server list");
      continuum = new Continuum(servers, this.hash);
      if (this.shared.size >= SHARED_CONTINUUMS) this.shared.clear();
      this.shared.set(list, continuum);
    }
    const id = this.nextId++;
    this.rings.set(id, { continuum, shared: true });
    return id;
  }

  /** "host:port" of the live server owning the key, or null when none is live. */
  serverFor(id: number, key: Uint8Array): string | null {
    const continuum = this.ring(id).continuum;
    if (continuum.size === 0) return null;
    return serverLabel(continuum.servers[continuum.ownerIndex(key)]);
  }

  serverCount(id: number): number {
    return this.ring(id).continuum.servers.length;
  }

  /** False for a server that is down or not in the ring. */
  isAvailable(id: number, name: string): boolean {
    const continuum = this.ring(id).continuum;
    const index = indexOf(continuum, name);
    return index >= 0 && continuum.isAvailable(index);
  }

  /** Marks a server up or down; false when the ring has no such server. */
  setAvailable(id: number, name: string, up: boolean): boolean {
    const ring = this.ring(id);
    const index = indexOf(ring.continuum, name);
    if (index < 0) return false;
    if (ring.continuum.isAvailable(index) === up) return true;
    if (ring.shared) {
      ring.continuum = new Continuum([...ring.continuum.servers], this.hash as HashName);
      ring.shared = false;
    }
    ring.continuum.setAvailable(index, up);
    return true;
  }

  free(id: number): void {
    this.rings.delete(id);
  }

  private ring(id: number): Ring {
    const ring = this.rings.get(id);
    if (ring === undefined) throw new Error("the ring was deleted");
    return ring;
  }
}

/** A server by "host:port" or by its ketama name (as written after it in the list). */
function indexOf(continuum: Continuum, name: string): number {
  return continuum.servers.findIndex((s) => serverLabel(s) === name || ketamaName(s) === name);
}
