/**
 * Proves Continuum routes keys exactly like a real twemproxy (nutcracker) with
 * `distribution: ketama`: keys are stored through nutcracker, then located by
 * asking each memcached directly, and every location must equal our owner.
 * Needs the Debian packages `nutcracker` and `memcached` on PATH.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { dlopen, FFIType, ptr } from "bun:ffi";
import { HASH_NAMES, type HashName } from "../src/cluster/hash.ts";
import { Continuum, parseServerList, pointsForServer, type ServerSpec } from "../src/cluster/ketama.ts";

const KEYS_PER_POOL = 10_000;
const IO_TIMEOUT_MS = 5_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------- processes

const procs: Subprocess[] = [];
let workDir = "";

/** Ports handed out so far: the kernel may give a just-released port again, and nutcracker exits when two pools share one. */
const handedOut = new Set<number>();

async function freePort(): Promise<number> {
  for (;;) {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = server.port;
    server.stop(true);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

async function waitForPort(port: number, proc: Subprocess, what: string): Promise<void> {
  const deadline = Date.now() + IO_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    try {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      socket.end();
      return;
    } catch {
      await Bun.sleep(20);
    }
  }
  throw new Error(`${what} did not listen on ${port} within ${IO_TIMEOUT_MS} ms`);
}

function spawn(cmd: string[], logName: string): Subprocess {
  if (Bun.which(cmd[0]) === null) {
    throw new Error(`${cmd[0]} not found: apt-get install -y nutcracker memcached`);
  }
  const proc = Bun.spawn(cmd, { stdout: Bun.file(join(workDir, logName)), stderr: "pipe" });
  procs.push(proc);
  return proc;
}

async function stopAll(): Promise<void> {
  for (const proc of procs) proc.kill("SIGKILL");
  await Promise.race([Promise.all(procs.map((p) => p.exited)), Bun.sleep(IO_TIMEOUT_MS)]);
}

// ---------------------------------------------------------------- raw I/O

/**
 * Writes `payload` to 127.0.0.1:port and collects the reply until `isDone`
 * (fed each chunk) says it is complete. Rejects after IO_TIMEOUT_MS.
 */
function exchange(port: number, payload: Uint8Array, isDone: (chunk: Uint8Array) => boolean): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let pending = payload;
    let settled = false;
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(() => finish(new Error(`no complete reply from ${port} in ${IO_TIMEOUT_MS} ms`)), IO_TIMEOUT_MS);
    const flush = (socket: { write(b: Uint8Array): number }): void => {
      while (pending.length > 0) {
        const n = socket.write(pending);
        if (n <= 0) return; // wait for drain
        pending = pending.subarray(n);
      }
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: flush,
        drain: flush,
        data(socket, chunk) {
          chunks.push(new Uint8Array(chunk));
          if (isDone(chunk)) {
            finish(null); // before end(): Bun may run close() synchronously inside it
            socket.end();
          }
        },
        close: () => finish(new Error(`connection to ${port} closed before the reply was complete`)),
        error: (_socket, err) => finish(err),
      },
    }).catch((err: Error) => finish(err));
  });
}

/** Sends one `set` per key (value "1") pipelined; returns the reply line of each. */
async function setAll(port: number, keys: string[]): Promise<string[]> {
  const payload = encoder.encode(keys.map((k) => `set ${k} 0 0 1\r\n1\r\n`).join(""));
  let lines = 0;
  const reply = await exchange(port, payload, (chunk) => {
    for (const b of chunk) if (b === 10) lines++;
    return lines >= keys.length;
  });
  return decoder.decode(reply).split("\r\n").slice(0, keys.length);
}

/** Returns the subset of `keys` that the memcached at `port` holds. */
async function heldKeys(port: number, keys: string[]): Promise<Set<string>> {
  const held = new Set<string>();
  const batch = 250;
  for (let i = 0; i < keys.length; i += batch) {
    let tail = "";
    const reply = await exchange(port, encoder.encode(`get ${keys.slice(i, i + batch).join(" ")}\r\n`), (chunk) => {
      tail = (tail + Buffer.from(chunk).toString("latin1")).slice(-5);
      return tail === "END\r\n"; // values are "1", so only the terminator ends like this
    });
    for (const line of decoder.decode(reply).split("\r\n")) {
      if (line.startsWith("VALUE ")) held.add(line.split(" ")[1]);
    }
  }
  return held;
}

// ---------------------------------------------------------------- keys

/** Deterministic keys of 1..60 bytes, some with multi-byte UTF-8 (bytes >= 0x80). */
function makeKeys(prefix: string, n: number): string[] {
  const alphabet = [..."abcdefghijklmnopqrstuvwxyz0123456789_-:.", "é", "ß", "ж", "日", "€"];
  let seed = 0x2545f491;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    let key = `${prefix}${i.toString(36)}`;
    const extra = next() % 48;
    for (let j = 0; j < extra; j++) key += alphabet[next() % alphabet.length];
    keys.push(key);
  }
  return keys;
}

// ---------------------------------------------------------------- fixture

interface Pool {
  name: string;
  hash: HashName;
  listenPort: number;
  servers: ServerSpec[];
  extraYaml: string;
}

const memcachedPorts: number[] = [];
const pools = new Map<string, Pool>();

function serverYaml(s: ServerSpec): string {
  return `   - ${s.host}:${s.port}:${s.weight}${s.name === undefined ? "" : ` ${s.name}`}\n`;
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), "cacheismo-ketama-"));
  for (let i = 0; i < 3; i++) memcachedPorts.push(await freePort());
  const deadPort = await freePort(); // nothing listens here: an always-failing node
  const ports = memcachedPorts;
  const plain = (weights: number[]): ServerSpec[] =>
    ports.map((port, i) => ({ host: "127.0.0.1", port, weight: weights[i] }));

  const defs: Omit<Pool, "listenPort">[] = HASH_NAMES.map((hash) => ({
    name: `eq_${hash}`,
    hash,
    servers: plain([1, 1, 1]),
    extraYaml: "",
  }));
  defs.push(
    { name: "weighted_md5", hash: "md5", servers: plain([1, 2, 5]), extraYaml: "" },
    { name: "weighted_fnv1a_64", hash: "fnv1a_64", servers: plain([3, 1, 1]), extraYaml: "" },
    {
      name: "named_murmur",
      hash: "murmur",
      servers: plain([1, 1, 2]).map((s, i) => ({ ...s, name: ["alpha", "beta", "gamma"][i] })),
      extraYaml: "",
    },
    {
      name: "eject_fnv1a_64",
      hash: "fnv1a_64",
      servers: [...plain([1, 1, 1]), { host: "127.0.0.1", port: deadPort, weight: 1 }],
      extraYaml: "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n",
    },
  );

  let yaml = "";
  for (const def of defs) {
    const pool: Pool = { ...def, listenPort: await freePort() };
    pools.set(pool.name, pool);
    yaml +=
      `${pool.name}:\n  listen: 127.0.0.1:${pool.listenPort}\n  hash: ${pool.hash}\n` +
      `  distribution: ketama\n  timeout: 2000\n${pool.extraYaml}  servers:\n` +
      pool.servers.map(serverYaml).join("");
  }
  const confPath = join(workDir, "nutcracker.yml");
  await Bun.write(confPath, yaml);

  const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : [];
  const memcached = ports.map((port) =>
    spawn(["memcached", "-l", "127.0.0.1", "-p", String(port), "-U", "0", "-m", "64", ...asRoot], `mc-${port}.log`),
  );
  const statsPort = await freePort();
  const nutcracker = spawn(
    ["nutcracker", "-c", confPath, "-o", join(workDir, "nutcracker.log"), "-s", String(statsPort), "-a", "127.0.0.1", "-p", join(workDir, "nc.pid")],
    "nutcracker.out",
  );
  await Promise.all(ports.map((port, i) => waitForPort(port, memcached[i], `memcached :${port}`)));
  await Promise.all([...pools.values()].map((p) => waitForPort(p.listenPort, nutcracker, `nutcracker pool ${p.name}`)));
});

afterAll(async () => {
  await stopAll();
  if (workDir !== "") rmSync(workDir, { recursive: true, force: true });
});

/** Stores keys through the pool, finds each on the memcacheds, returns node index per key. */
async function placeThroughNutcracker(pool: Pool, keys: string[]): Promise<Map<string, number>> {
  const replies = await setAll(pool.listenPort, keys);
  expect(replies.filter((r) => r !== "STORED")).toEqual([]);
  const where = new Map<string, number>();
  const held = await Promise.all(memcachedPorts.map((port) => heldKeys(port, keys)));
  held.forEach((set, node) => {
    for (const key of set) {
      expect(where.has(key)).toBe(false); // a key lives on exactly one node
      where.set(key, node);
    }
  });
  expect(where.size).toBe(keys.length);
  return where;
}

function expectSameOwners(continuum: Continuum, pool: Pool, keys: string[], where: Map<string, number>): void {
  const portToNode = new Map(memcachedPorts.map((port, i) => [port, i]));
  const mismatches: string[] = [];
  for (const key of keys) {
    const ours = portToNode.get(continuum.ownerOf(key).port);
    if (ours !== where.get(key)) mismatches.push(key);
  }
  expect({ pool: pool.name, mismatches: mismatches.slice(0, 5), count: mismatches.length }).toEqual({
    pool: pool.name,
    mismatches: [],
    count: 0,
  });
}

describe("Continuum vs. a real nutcracker (ketama)", () => {
  for (const hash of HASH_NAMES) {
    test(`hash ${hash}, equal weights: ${KEYS_PER_POOL} keys land where nutcracker put them`, async () => {
      const pool = pools.get(`eq_${hash}`)!;
      const keys = makeKeys(`${hash}:`, KEYS_PER_POOL);
      const where = await placeThroughNutcracker(pool, keys);
      expectSameOwners(new Continuum(pool.servers, pool.hash), pool, keys, where);
      // crc32 (15 bits) and crc16 (16 bits) only reach the low end of the ring
      if (hash !== "crc32" && hash !== "crc16") expect(new Set(where.values()).size).toBe(3);
    });
  }

  for (const name of ["weighted_md5", "weighted_fnv1a_64", "named_murmur"]) {
    test(`${name}: weights and server names place ${KEYS_PER_POOL} keys like nutcracker`, async () => {
      const pool = pools.get(name)!;
      const keys = makeKeys(`${name}:`, KEYS_PER_POOL);
      expectSameOwners(new Continuum(pool.servers, pool.hash), pool, keys, await placeThroughNutcracker(pool, keys));
    });
  }

  test(`auto_eject_hosts: after a dead node is ejected, setAvailable(false) matches nutcracker for ${KEYS_PER_POOL} keys`, async () => {
    const pool = pools.get("eject_fnv1a_64")!;
    const continuum = new Continuum(pool.servers, pool.hash);
    const dead = pool.servers.length - 1;
    // Probe one key at a time until nutcracker reports the dead node failing;
    // with server_failure_limit 1 that single failure ejects it.
    let failedKey = "";
    for (const key of makeKeys("probe:", 200)) {
      const [reply] = await setAll(pool.listenPort, [key]);
      if (reply !== "STORED") {
        failedKey = key;
        break;
      }
    }
    expect(failedKey).not.toBe("");
    expect(continuum.ownerIndex(encoder.encode(failedKey))).toBe(dead);

    continuum.setAvailable(dead, false);
    const keys = makeKeys("ejected:", KEYS_PER_POOL);
    expectSameOwners(continuum, pool, keys, await placeThroughNutcracker(pool, keys));
  });
});

describe("Continuum construction", () => {
  const three = parseServerList("127.0.0.1:11211:1,127.0.0.1:11212 127.0.0.1:11213:1");

  test("equal weights give every server 160 points (40 MD5 digests x 4)", () => {
    expect(new Continuum(three, "md5").size).toBe(480);
    expect(pointsForServer(1, 3, 3)).toBe(160);
  });

  test("points scale with weight share using twemproxy's float32 arithmetic", () => {
    // weights 1,2,5 of 8 over 3 servers: floor(pct*40*3)*4
    expect([1, 2, 5].map((w) => pointsForServer(w, 8, 3))).toEqual([60, 120, 300]);
  });

  test("a server marked unavailable loses its points and only its keys move", () => {
    const c = new Continuum(three, "fnv1a_64");
    const keys = makeKeys("move:", 2000).map((k) => encoder.encode(k));
    const before = keys.map((k) => c.ownerIndex(k));
    c.setAvailable(1, false);
    expect(c.size).toBe(320);
    keys.forEach((k, i) => {
      const after = c.ownerIndex(k);
      expect(after).not.toBe(1);
      if (before[i] !== 1) expect(after).toBe(before[i]);
    });
    c.setAvailable(1, true);
    expect(keys.map((k) => c.ownerIndex(k))).toEqual(before);
  });

  test("with no live server, lookups throw", () => {
    const c = new Continuum(three.slice(0, 1), "md5");
    c.setAvailable(0, false);
    expect(() => c.ownerOf("k")).toThrow("no live servers");
  });

  test("ownerIndex hashes only the given slice of the buffer", () => {
    const c = new Continuum(three, "murmur");
    const buf = encoder.encode("xx:some-key:yy");
    expect(c.ownerIndex(buf, 3, 8)).toBe(c.ownerIndex(encoder.encode("some-key")));
  });

  test("port 11211 without a name hashes like a server named by its host", () => {
    const keys = makeKeys("name:", 500);
    const a = new Continuum([{ host: "10.0.0.1", port: 11211, weight: 1 }, { host: "10.0.0.2", port: 11300, weight: 1 }], "md5");
    const b = new Continuum(
      [
        { host: "x", port: 1, weight: 1, name: "10.0.0.1" },
        { host: "y", port: 2, weight: 1, name: "10.0.0.2:11300" },
      ],
      "md5",
    );
    expect(keys.map((k) => a.ownerIndex(encoder.encode(k)))).toEqual(keys.map((k) => b.ownerIndex(encoder.encode(k))));
  });
});

const LIBMEMCACHED = "/usr/lib/x86_64-linux-gnu/libmemcached.so.11";

describe("libmemcached's weighted ketama", () => {
  // Only where the Debian package libmemcached11 happens to be installed.
  test.skipIf(!existsSync(LIBMEMCACHED))("picks the same server as Continuum for unnamed servers, with and without port 11211", () => {
    const lib = dlopen(LIBMEMCACHED, {
      memcached_create: { args: [FFIType.ptr], returns: FFIType.ptr },
      memcached_free: { args: [FFIType.ptr], returns: FFIType.void },
      memcached_server_add_with_weight: { args: [FFIType.ptr, FFIType.cstring, FFIType.u16, FFIType.u32], returns: FFIType.i32 },
      memcached_behavior_set: { args: [FFIType.ptr, FFIType.i32, FFIType.u64], returns: FFIType.i32 },
      memcached_generate_hash: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.u32 },
    });
    const KETAMA_WEIGHTED = 16; // memcached_behavior_t; also selects md5 for keys
    const servers = parseServerList("10.0.0.1:11211:1 10.0.0.2:11300:3 cache-c:11212:5");
    const memc = lib.symbols.memcached_create(null);
    try {
      expect(lib.symbols.memcached_behavior_set(memc, KETAMA_WEIGHTED, 1)).toBe(0);
      for (const s of servers) {
        expect(lib.symbols.memcached_server_add_with_weight(memc, Buffer.from(`${s.host}\0`), s.port, s.weight)).toBe(0);
      }
      const continuum = new Continuum(servers, "md5");
      const mismatches = makeKeys("libmemcached:", KEYS_PER_POOL)
        .map((k) => encoder.encode(k))
        .filter((k) => lib.symbols.memcached_generate_hash(memc, ptr(k), k.length) !== continuum.ownerIndex(k));
      expect(mismatches.length).toBe(0);
    } finally {
      lib.symbols.memcached_free(memc);
      lib.close();
    }
  });
});

describe("parseServerList", () => {
  test("accepts commas, spaces and tabs; weight defaults to 1; a bare word names the previous server", () => {
    expect(parseServerList("127.0.0.1:11211:1,127.0.0.1:11212\t10.0.0.3:7000:3 cache-c ,[::1]:11213:2")).toEqual([
      { host: "127.0.0.1", port: 11211, weight: 1 },
      { host: "127.0.0.1", port: 11212, weight: 1 },
      { host: "10.0.0.3", port: 7000, weight: 3, name: "cache-c" },
      { host: "[::1]", port: 11213, weight: 2 },
    ]);
  });

  test("rejects malformed entries", () => {
    expect(() => parseServerList("localhost")).toThrow();
    expect(() => parseServerList("h:0")).toThrow();
    expect(() => parseServerList("h:1:0")).toThrow();
    expect(() => parseServerList("h:1 a b")).toThrow();
  });
});
