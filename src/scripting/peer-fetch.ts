/**
 * What `command:getFromServer` and `command:getInParallel` wait for: plain
 * `get` requests to other memcached-protocol servers (cacheismo nodes or
 * memcached), over one pipelined PeerLink per address (the links forwarding
 * uses, src/cluster/peer-link.ts), created on first use; writes go out once per
 * event-loop turn. A server that is down, refuses, breaks the protocol or does
 * not answer within the peer timeout yields no values; a fetch never rejects
 * and never outlasts the timeout by more than a timer tick.
 */
import { type LinkEvents, PeerLink, type ReplyTarget } from "../cluster/peer-link.ts";
import { ReplyKind } from "../cluster/reply-shape.ts";
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
/** Links kept; past this the oldest is closed (its requests in flight fail). */
const MAX_LINKS = 256;

const ADDRESS_RE = /^(?:\[([^\]]+)\]|([^:\s\[\]]+)):(\d{1,5})$/;

export class PeerPool {
  private readonly links = new Map<string, PeerLink>();
  private readonly toFlush = new Set<PeerLink>();
  /** The links only need flushing: a server's health is not tracked for scripts (each fetch just fails). */
  private readonly events: LinkEvents = {
    answered() {},
    failed() {},
    wantsFlush: (link) => this.flushLater(link),
    settled() {},
  };

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
    for (const link of this.links.values()) link.fail("closing");
    this.links.clear();
  }

  /** The values the server has for `keys`, by key; empty when any of its requests failed. */
  private getMany(server: string, keys: readonly string[]): Promise<Map<string, Uint8Array>> {
    const link = this.link(server);
    const values = new Map<string, Uint8Array>();
    let waiting = Math.ceil(keys.length / KEYS_PER_GET);
    let failed = false;
    return new Promise((resolve) => {
      const settle = (): void => {
        if (--waiting === 0) resolve(failed ? new Map() : values);
      };
      const target: ReplyTarget = {
        answered: (_tag, buf, from, to) => {
          addValues(values, buf, from, to);
          settle();
        },
        failed: () => {
          failed = true;
          settle();
        },
      };
      for (let i = 0; i < keys.length; i += KEYS_PER_GET) {
        const line = keys.slice(i, i + KEYS_PER_GET).join(" ");
        link.out.put(latin1Bytes(`get ${line}\r\n`));
        link.sent(ReplyKind.Retrieval, latin1Bytes(line), target, 0);
      }
    });
  }

  private link(server: string): PeerLink {
    let link = this.links.get(server);
    if (link === undefined || link.dead) {
      this.links.delete(server);
      if (this.links.size >= MAX_LINKS) {
        const [oldest, oldestLink] = this.links.entries().next().value!;
        oldestLink.fail("too many servers");
        this.links.delete(oldest);
      }
      const { host, port } = parseAddress(server)!;
      link = new PeerLink(`server ${server}`, host, port, this.timeoutMs, UNAVAILABLE, this.events);
      this.links.set(server, link);
    }
    return link;
  }

  /** Requests queued during this turn go out together at its end. */
  private flushLater(link: PeerLink): void {
    if (this.toFlush.size === 0) {
      setImmediate(() => {
        for (const l of this.toFlush) l.flush();
        this.toFlush.clear();
      });
    }
    this.toFlush.add(link);
  }
}

/** What a failed request's target is given; a fetch only counts it as a failure. */
const UNAVAILABLE = latin1Bytes("SERVER_ERROR unavailable\r\n");

function parseAddress(server: string): { host: string; port: number } | null {
  const m = ADDRESS_RE.exec(server);
  if (m === null) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

/**
 * Adds the VALUE blocks of one retrieval reply buf[from, to) (checked by the link against its
 * request, so well formed) to `values`, by key; the first block of a key wins. END and error
 * lines carry no values.
 */
function addValues(values: Map<string, Uint8Array>, buf: Uint8Array, from: number, to: number): void {
  let pos = from;
  while (pos < to) {
    const lf = buf.indexOf(10, pos);
    if (lf < 0 || lf >= to) break;
    const line = latin1String(buf, pos, lf - 1);
    pos = lf + 1;
    if (!line.startsWith("VALUE ")) continue;
    const [, key, , bytes] = line.split(" ");
    const length = Number(bytes);
    if (!values.has(key)) values.set(key, buf.slice(pos, pos + length));
    pos += length + 2;
  }
}
