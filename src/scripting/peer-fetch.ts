/**
 * What `command:getFromServer` and `command:getInParallel` wait for: plain
 * `get` requests to other memcached-protocol servers (cacheismo nodes or
 * memcached), over one pooled, pipelined PeerClient per address, created on
 * first use. A server that is down, refuses, breaks the protocol or does not
 * answer within the peer timeout yields no values; a fetch never rejects and
 * never outlasts the timeout by more than a timer tick.
 */
import { PeerClient } from "../cluster/peer.ts";
import { latin1Bytes, latin1String } from "../latin1.ts";

export interface FetchRequest {
  /** "host:port"; an IPv6 host in brackets. */
  readonly server: string;
  /** Valid memcached keys (no spaces or control characters), as latin1 strings. */
  readonly keys: readonly string[];
}

export interface FetchAnswer {
  /** One slot per requested key, in request order: the value's bytes, or null (miss or failure). */
  readonly values: (Uint8Array | null)[];
  /** Set when the request itself is wrong (a malformed address); then no value was fetched. */
  readonly error: string | null;
}

/** Keys per `get` line, well inside every server's line limit. */
const KEYS_PER_GET = 100;
/** Clients kept; past this the oldest is closed (its requests in flight fail). */
const MAX_CLIENTS = 256;

const ADDRESS_RE = /^(?:\[([^\]]+)\]|([^:\s\[\]]+)):(\d{1,5})$/;

export class PeerPool {
  private readonly clients = new Map<string, PeerClient>();

  constructor(private readonly timeoutMs: number) {}

  fetch(requests: readonly FetchRequest[]): Promise<FetchAnswer> {
    for (const { server } of requests) {
      if (parseAddress(server) === null) return Promise.resolve({ values: [], error: `invalid server address "${server}" (expected host:port)` });
    }
    return Promise.all(requests.map((r) => this.getMany(r.server, r.keys))).then((found) => {
      const values: (Uint8Array | null)[] = [];
      requests.forEach((r, i) => {
        for (const key of r.keys) values.push(found[i].get(key) ?? null);
      });
      return { values, error: null };
    });
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  /** The values the server has for `keys`, by key; empty when it failed. */
  private async getMany(server: string, keys: readonly string[]): Promise<Map<string, Uint8Array>> {
    let request = "";
    for (let i = 0; i < keys.length; i += KEYS_PER_GET) request += `get ${keys.slice(i, i + KEYS_PER_GET).join(" ")}\r\n`;
    try {
      return valuesOf(await this.client(server).request(latin1Bytes(request)));
    } catch {
      return new Map();
    }
  }

  private client(server: string): PeerClient {
    let client = this.clients.get(server);
    if (client === undefined) {
      if (this.clients.size >= MAX_CLIENTS) {
        const [oldest, oldestClient] = this.clients.entries().next().value!;
        oldestClient.close();
        this.clients.delete(oldest);
      }
      const { host, port } = parseAddress(server)!;
      client = new PeerClient(host, port, this.timeoutMs);
      this.clients.set(server, client);
    }
    return client;
  }
}

function parseAddress(server: string): { host: string; port: number } | null {
  const m = ADDRESS_RE.exec(server);
  if (m === null) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

/**
 * The VALUE blocks of one or more retrieval replies (framed by PeerClient, so
 * well formed), by key. END and error lines carry no values.
 */
function valuesOf(reply: Uint8Array): Map<string, Uint8Array> {
  const values = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < reply.length) {
    const lf = reply.indexOf(10, pos);
    if (lf < 0) break;
    const line = latin1String(reply, pos, lf - 1);
    pos = lf + 1;
    if (!line.startsWith("VALUE ")) continue;
    const [, key, , bytes] = line.split(" ");
    const length = Number(bytes);
    if (!values.has(key)) values.set(key, reply.slice(pos, pos + length));
    pos += length + 2;
  }
  return values;
}
