/**
 * Consistent hashing identical to twemproxy's `distribution: ketama`
 * (nutcracker 0.5.0, src/hashkit/nc_ketama.c + server naming in nc_conf.c).
 *
 * For each live server, in configuration order:
 *   points = floorf(pct * 160 / 4 * nlive + 1e-10) * 4, pct = weight / live weight,
 *   all in single-precision float as the C code does (so equal weights give
 *   exactly 160 points each);
 *   for i in 0 .. points/4 - 1: digest = MD5("<name>-<i>"), and each of the
 *   digest's four little-endian 32-bit words becomes one point owned by the server.
 * `<name>` is the server's configured name ("host:port:weight name") or, without
 * one, "host:port" — or just "host" when the port is 11211. Points are sorted
 * by value; a key goes to the first point >= its hash, wrapping to the first
 * point past the end. An empty key hashes to 0, as in twemproxy.
 *
 * libmemcached's weighted ketama (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED,
 * hosts.cc update_continuum) builds the same continuum from "host-i" when the
 * port is 11211 and "host:port-i" otherwise, with the same float formula,
 * 4 points per MD5 and the same lookup. twemproxy's default naming exists to
 * match it, so the two agree for unnamed servers given the same host strings,
 * order and weights, and the same key hash (libmemcached's weighted mode
 * switches keys to md5); test/cluster-ketama.test.ts checks this against
 * libmemcached 1.1.4. They disagree when: a twemproxy server has a name (it
 * hashes "name-i" and ignores host and port entirely, so a node can move
 * without remapping keys); libmemcached sorts its hosts (SORT_HOSTS), which
 * changes indices but not owners; or libmemcached runs unweighted ketama
 * (100 points per server, one hash per point key) or the SPY variant, which
 * hashes "/host:port-i" for i from 0.
 *
 * Exact ties between two servers' 32-bit points are ordered by server index;
 * twemproxy leaves that order to qsort. A tie needs a 32-bit MD5 collision
 * among a few hundred points, so this practically never matters.
 */
import { hashFunction, md5Word, type HashFn, type HashName } from "./hash.ts";

export interface ServerSpec {
  host: string;
  port: number;
  weight: number;
  name?: string;
}

const POINTS_PER_SERVER = 160;
const POINTS_PER_HASH = 4;
const LIBMEMCACHED_DEFAULT_PORT = 11211;
// twemproxy formats point keys into a char[273]; longer ones would be truncated.
const MAX_POINT_KEY_BYTES = 272;

const SERVER_RE = /^(\[[^\]]+\]|[^:\s,]+):(\d+)(?::(\d+))?$/;

/**
 * Parses "host:port[:weight] [name]" entries separated by commas, spaces or
 * tabs, e.g. "127.0.0.1:11211:1 alpha, 127.0.0.1:11212". A token without ':'
 * names the server before it. IPv6 hosts must be bracketed.
 */
export function parseServerList(list: string): ServerSpec[] {
  const servers: ServerSpec[] = [];
  for (const token of list.split(/[\s,]+/)) {
    if (token === "") continue;
    if (!token.includes(":")) {
      const last = servers[servers.length - 1];
      if (last === undefined || last.name !== undefined) {
        throw new Error(`server list: "${token}" is not host:port[:weight]`);
      }
      last.name = token;
      continue;
    }
    const m = SERVER_RE.exec(token);
    if (m === null) throw new Error(`server list: "${token}" is not host:port[:weight]`);
    const port = Number(m[2]);
    const weight = m[3] === undefined ? 1 : Number(m[3]);
    if (port < 1 || port > 65535) throw new Error(`server list: bad port in "${token}"`);
    if (weight < 1) throw new Error(`server list: weight must be >= 1 in "${token}"`);
    servers.push({ host: m[1], port, weight });
  }
  return servers;
}

/** The string twemproxy hashes (with "-<i>" appended) to place a server's points. */
export function ketamaName(server: ServerSpec): string {
  if (server.name !== undefined) return server.name;
  return server.port === LIBMEMCACHED_DEFAULT_PORT ? server.host : `${server.host}:${server.port}`;
}

/** twemproxy's per-server point count, evaluated in float32 like the C code. */
export function pointsForServer(weight: number, liveWeight: number, nlive: number): number {
  const f = Math.fround;
  const pct = f(f(weight) / f(liveWeight));
  const scaled = f(f(f(pct * POINTS_PER_SERVER) / POINTS_PER_HASH) * f(nlive));
  return Math.floor(f(scaled + 0.0000000001)) * POINTS_PER_HASH;
}

export class Continuum {
  readonly servers: readonly ServerSpec[];
  private readonly hash: HashFn;
  private readonly up: boolean[];
  private readonly nameBytes: Uint8Array[];
  private values = new Uint32Array(0);
  private owners = new Uint32Array(0);
  private readonly encoder = new TextEncoder();

  constructor(servers: ServerSpec[], hash: HashName) {
    if (servers.length === 0) throw new Error("continuum needs at least one server");
    if (servers.length > 0xffff) throw new Error("continuum supports at most 65535 servers");
    this.servers = servers.map((s) => ({ ...s }));
    this.hash = hashFunction(hash);
    this.up = servers.map(() => true);
    this.nameBytes = servers.map((s) => {
      if (!Number.isInteger(s.weight) || s.weight < 1) {
        throw new Error(`server ${s.host}:${s.port}: weight must be an integer >= 1`);
      }
      const bytes = this.encoder.encode(ketamaName(s));
      // room for "-" and a point index of up to 7 digits
      if (bytes.length + 8 > MAX_POINT_KEY_BYTES) {
        throw new Error(`server name "${ketamaName(s)}" is too long for twemproxy's ketama`);
      }
      return bytes;
    });
    this.rebuild();
  }

  /** Marks a server up or down and rebuilds the continuum from the live ones. */
  setAvailable(index: number, up: boolean): void {
    if (index < 0 || index >= this.servers.length) throw new RangeError(`no server ${index}`);
    if (this.up[index] === up) return;
    this.up[index] = up;
    this.rebuild();
  }

  isAvailable(index: number): boolean {
    return this.up[index] === true;
  }

  /** Number of points on the continuum (160 per live server for equal weights). */
  get size(): number {
    return this.values.length;
  }

  /** Index into `servers` of the node owning key[off, off+len). Throws if no server is live. */
  ownerIndex(key: Uint8Array, off = 0, len = key.length - off): number {
    const n = this.values.length;
    if (n === 0) throw new Error("no live servers in continuum");
    const h = len === 0 ? 0 : this.hash(key, off, len);
    const values = this.values;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (values[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === n ? 0 : lo];
  }

  ownerOf(key: string): ServerSpec {
    return this.servers[this.ownerIndex(this.encoder.encode(key))];
  }

  private rebuild(): void {
    let nlive = 0;
    let liveWeight = 0;
    for (let i = 0; i < this.servers.length; i++) {
      if (!this.up[i]) continue;
      nlive++;
      liveWeight += this.servers[i].weight;
    }
    // value * 2^16 + server index stays exact in a double (< 2^48), so one
    // numeric sort orders by value and breaks ties by server index.
    const packed: number[] = [];
    for (let i = 0; i < this.servers.length; i++) {
      if (!this.up[i]) continue;
      const hashes = pointsForServer(this.servers[i].weight, liveWeight, nlive) / POINTS_PER_HASH;
      for (let p = 0; p < hashes; p++) {
        const key = this.pointKey(i, p);
        for (let w = 0; w < POINTS_PER_HASH; w++) {
          packed.push(md5Word(key, 0, key.length, w) * 0x10000 + i);
        }
      }
    }
    const sorted = Float64Array.from(packed).sort();
    this.values = new Uint32Array(sorted.length);
    this.owners = new Uint32Array(sorted.length);
    for (let j = 0; j < sorted.length; j++) {
      const v = sorted[j];
      this.values[j] = Math.floor(v / 0x10000);
      this.owners[j] = v % 0x10000;
    }
  }

  private pointKey(server: number, point: number): Uint8Array {
    const name = this.nameBytes[server];
    const suffix = this.encoder.encode(`-${point}`);
    const key = new Uint8Array(name.length + suffix.length);
    key.set(name, 0);
    key.set(suffix, name.length);
    return key;
  }
}
