/**
 * The meta commands (mg ms md ma mn me) over TCP against a real cacheismo process, flag by flag,
 * as memcached 1.6.45's doc/protocol.txt describes them. Where Debian's memcached 1.6.18 answers
 * the same, a script is also run against it and the replies compared byte for byte.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { RawClient } from "./helpers/raw-client.ts";
import { freePort, type SpawnedServer, spawnCacheismo, waitForPort } from "./helpers/spawn.ts";

let server: SpawnedServer;
let c: RawClient;

beforeAll(async () => {
  // Two threads: the stale-while-revalidate tests' two connections may land on either.
  server = await spawnCacheismo(["-t", "2", "-e", "-I", "4k"]);
  c = await RawClient.connect(server.port);
});

afterAll(async () => {
  c.close();
  await server.kill();
});

/** Sends the requests and `mn`; returns every reply before `MN`. */
async function meta(requests: string, client = c): Promise<string> {
  const reply = await client.request(`${requests}mn\r\n`, "MN\r\n");
  return reply.slice(0, -"MN\r\n".length);
}

/** The CAS unique a reply line carries in its `c` flag. */
function casIn(reply: string): string {
  const m = / c(\d+)/.exec(reply);
  if (m === null) throw new Error(`no c flag in ${JSON.stringify(reply)}`);
  return m[1];
}

describe("mg", () => {
  test("a hit answers VA with the value and the asked flags in request order; without v it is HD", async () => {
    expect(await meta("ms g1 5 F42 T0\r\nhello\r\n")).toBe("HD\r\n");
    const reply = await meta("mg g1 s v f t k Oabc\r\nmg g1 f s\r\n");
    expect(reply).toBe("VA 5 s5 f42 t-1 kg1 Oabc\r\nhello\r\nHD f42 s5\r\n");
  });

  test("c returns the CAS that gets returns", async () => {
    await meta("ms g2 1\r\nx\r\n");
    const cas = casIn(await meta("mg g2 c\r\n"));
    expect(await c.request("gets g2\r\n", "END\r\n")).toBe(`VALUE g2 0 1 ${cas}\r\nx\r\nEND\r\n`);
  });

  test("a miss answers EN with the opaque and key; q hides it", async () => {
    expect(await meta("mg g-miss v O9 k\r\nmg g-miss v q O10\r\n")).toBe("EN O9 kg-miss\r\n");
  });

  test("h and l tell what was true before the request; u neither bumps nor marks the item fetched", async () => {
    await meta("ms g3 1\r\nx\r\n");
    const reply = await meta("mg g3 h l u\r\nmg g3 h\r\nmg g3 h\r\n");
    expect(reply).toMatch(/^HD h0 l\d+\r\nHD h0\r\nHD h1\r\n$/);
  });

  test("hits on a hot key are answered without the store lock and say the same as locked ones", async () => {
    await meta("ms g-hot 3 F7\r\nhot\r\n");
    const first = await meta("mg g-hot v f c h k Ox\r\n"); // the first fetch writes: locked
    const lockFree = (stats: string): number => Number(/STAT get_lock_free (\d+)/.exec(stats)![1]);
    const before = lockFree(await c.request("stats\r\n", "END\r\n"));
    const again = await meta("mg g-hot v f c h k Ox\r\n".repeat(5));
    expect(again).toBe(first.replace("h0", "h1").repeat(5));
    expect(lockFree(await c.request("stats\r\n", "END\r\n"))).toBeGreaterThan(before);
  });

  test("t is the TTL left, -1 for none; T touches, in the order the flags came", async () => {
    await meta("ms g4 1 T100\r\nx\r\n");
    const reply = await meta("mg g4 t T0\r\nmg g4 t\r\nmg g4 T1000 t\r\n");
    expect(reply).toMatch(/^HD t(99|100)\r\nHD t-1\r\nHD t(999|1000)\r\n$/);
  });

  test("T with a negative TTL expires the item", async () => {
    await meta("ms g5 1\r\nx\r\n");
    expect(await meta("mg g5 T-1\r\nmg g5 v\r\n")).toBe("HD\r\nEN\r\n");
  });

  test("N vivifies a miss as an empty item: its creator wins (W), later readers see Z; E sets its CAS", async () => {
    const reply = await meta("mg g6 v c N30 E12345 t\r\nmg g6 v N30\r\n");
    expect(reply).toMatch(/^VA 0 c12345 t(29|30) W\r\n\r\nVA 0 Z\r\n\r\n$/);
    // The TTL is set where N stands: a t before it still sees none.
    expect(await meta("mg g6b t N30\r\nmg g6b t\r\n")).toMatch(/^HD t-1 W\r\nHD t(29|30) Z\r\n$/);
  });

  test("R wins the recache once when the TTL left is below its token", async () => {
    await meta("ms g7 1 T10\r\nx\r\n");
    expect(await meta("mg g7 R5\r\nmg g7 R30\r\nmg g7 R30\r\n")).toBe("HD\r\nHD W\r\nHD Z\r\n");
  });

  test("errors are always answered, q or not", async () => {
    const long = "k".repeat(251);
    const reply = await meta(
      `mg g1 v q y\r\nmg g1 v v\r\nmg g1 TX\r\nmg g1 O${"x".repeat(32)}\r\nmg ${long} v\r\nmg\r\nmg g1 ${"s ".repeat(10)}${"t ".repeat(10)}\r\n`,
    );
    expect(reply).toBe(
      [
        "CLIENT_ERROR invalid flag",
        "CLIENT_ERROR duplicate flag",
        "CLIENT_ERROR bad token in command line format",
        "CLIENT_ERROR opaque token too long",
        "CLIENT_ERROR bad command line format",
        "ERROR",
        "CLIENT_ERROR options flags are too long",
        "",
      ].join("\r\n"),
    );
  });

  test("P and L (proxy hints) are ignored", async () => {
    expect(await meta("mg g1 v P/x L/y\r\n")).toBe("VA 5\r\nhello\r\n");
  });
});

describe("ms", () => {
  test("stores with F and T; c returns the new CAS, k the key, O the opaque, s the size", async () => {
    const reply = await meta("ms s1 3 F7 T0 c k Oz s\r\nabc\r\n");
    expect(reply).toMatch(/^HD c\d+ ks1 Oz s3\r\n$/);
    expect(await meta("mg s1 f v t\r\n")).toBe("VA 3 f7 t-1\r\nabc\r\n");
  });

  test("q hides HD but not NS", async () => {
    expect(await meta("ms s2 1 q\r\nx\r\nms s2 1 ME q\r\ny\r\n")).toBe("NS\r\n");
  });

  test("modes: E adds, R replaces, A appends, P prepends, S sets", async () => {
    const reply = await meta(
      "ms s3 1 MR\r\nx\r\nms s3 1 ME\r\na\r\nms s3 1 ME\r\nb\r\nms s3 1 MA s\r\nz\r\nms s3 1 MP s\r\n_\r\nms s3 2 MR F3\r\nrr\r\nms s3 1 MS\r\nS\r\nmg s3 v f\r\n",
    );
    expect(reply).toBe("NS\r\nHD\r\nNS\r\nHD s2\r\nHD s3\r\nHD\r\nHD\r\nVA 1 f0\r\nS\r\n");
  });

  test("append mode: a miss is NS, or stored as set with N's TTL", async () => {
    expect(await meta("ms s4 2 MA\r\nhi\r\nms s4 2 MA N50\r\nhi\r\nmg s4 v t\r\n")).toMatch(/^NS\r\nHD\r\nVA 2 t(49|50)\r\nhi\r\n$/);
  });

  test("C compares the CAS (NF on a miss, EX on a mismatch), in set, replace and append modes; E sets the new CAS", async () => {
    await meta("ms s5 1\r\nx\r\n");
    const cas = casIn(await meta("mg s5 c\r\n"));
    const reply = await meta(
      `ms s5-miss 1 C1\r\nx\r\nms s5 1 C${Number(cas) + 1000}\r\ny\r\nms s5 1 MA C${Number(cas) + 1000}\r\ny\r\nms s5 1 C${cas} E900000 c\r\nz\r\nms s5 1 MA C900000 c\r\n!\r\nmg s5 v\r\n`,
    );
    expect(reply).toMatch(/^NF\r\nEX\r\nEX\r\nHD c900000\r\nHD c\d+\r\nVA 2\r\nz!\r\n$/);
  });

  test("a bad data chunk is answered even with q; the rest of the line is read as a command", async () => {
    expect(await meta("ms s6 3 q\r\nabcde\r\n")).toBe("CLIENT_ERROR bad data chunk\r\nERROR\r\n");
  });

  test("refused requests swallow their data block: a bad flag, an invalid mode, a long key, a value past -I", async () => {
    const reply = await meta(
      `ms s7 3 y\r\nget\r\nms s7 3 MZ\r\nget\r\nms ${"k".repeat(251)} 3\r\nget\r\nms s7 5000\r\n${"v".repeat(5000)}\r\n`,
    );
    expect(reply).toBe(
      "CLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid mode for ms M token\r\nCLIENT_ERROR bad command line format\r\nSERVER_ERROR object too large for cache\r\n",
    );
  });

  test("an unreadable length is an error without a data block", async () => {
    expect(await meta("ms s8 abc\r\nms s8\r\n")).toBe("CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n");
  });

  test("an append past the item limit is NS and keeps the old value", async () => {
    await meta(`ms s9 3000\r\n${"a".repeat(3000)}\r\n`);
    expect(await meta(`ms s9 2000 MA\r\n${"b".repeat(2000)}\r\nmg s9 s\r\n`)).toBe("NS\r\nHD s3000\r\n");
  });

  test("b takes a base64 key: any binary key up to 250 bytes round-trips, k returns it encoded", async () => {
    const key = Buffer.from(Array.from({ length: 250 }, (_, i) => (i * 7 + 1) % 256));
    const b64 = key.toString("base64");
    expect(await meta(`ms ${b64} 2 b k\r\nhi\r\nmg ${b64} b v k\r\n`)).toBe(`HD k${b64} b\r\nVA 2 k${b64} b\r\nhi\r\n`);
    // The same key reached by the classic protocol when its bytes are printable.
    expect(await meta(`ms ${Buffer.from("plain").toString("base64")} 1 b\r\np\r\n`)).toBe("HD\r\n");
    expect(await c.request("get plain\r\n", "END\r\n")).toBe("VALUE plain 0 1\r\np\r\nEND\r\n");
    expect(await meta("mg !!!! b v\r\nmg Zm9 b v\r\n")).toBe("CLIENT_ERROR error decoding key\r\nCLIENT_ERROR error decoding key\r\n");
    // A hit's k is the key as the item was stored: base64 for a b key, plain bytes otherwise.
    const reply = await meta(`ms Zm9vYg== 1 b\r\nx\r\nmg foob k\r\nset bar2 0 0 1\r\nb\r\nmg ${Buffer.from("bar2").toString("base64")} b k\r\n`);
    expect(reply).toBe("HD\r\nHD kZm9vYg== b\r\nSTORED\r\nHD kbar2\r\n");
    const tooLong = Buffer.alloc(251, 1).toString("base64");
    expect(await meta(`mg ${tooLong} b v\r\n`)).toBe("CLIENT_ERROR bad command line format\r\n");
  });
});

describe("md", () => {
  test("deletes: HD, then NF; k and O come back; q hides HD and NF", async () => {
    await meta("ms d1 1\r\nx\r\n");
    expect(await meta("md d1 k O5\r\nmd d1 k O6\r\nmd d1 q\r\nmg d1\r\n")).toBe("HD kd1 O5\r\nNF kd1 O6\r\nEN\r\n");
    await meta("ms d1 1\r\nx\r\n");
    expect(await meta("md d1 q\r\nmg d1\r\n")).toBe("EN\r\n");
  });

  test("C deletes only on a matching CAS", async () => {
    await meta("ms d2 1\r\nx\r\n");
    const cas = casIn(await meta("mg d2 c\r\n"));
    expect(await meta(`md d2 C${Number(cas) + 1}\r\nmd d2 C${cas}\r\nmg d2\r\n`)).toBe("EX\r\nHD\r\nEN\r\n");
  });

  test("I marks the item stale with a new CAS (E chooses it) and T a new TTL", async () => {
    await meta("ms d3 3 T0\r\nold\r\n");
    expect(await meta("md d3 I T60 E4242\r\nmg d3 v c t\r\n")).toMatch(/^HD\r\nVA 3 c4242 t(59|60) X W\r\nold\r\n$/);
  });

  test("x removes the value and keeps the item, its flags and TTL", async () => {
    await meta("ms d4 5 F9 T100\r\nvalue\r\n");
    expect(await meta("md d4 x\r\nmg d4 v f t\r\n")).toMatch(/^HD\r\nVA 0 f9 t(99|100)\r\n\r\n$/);
  });

  test("a bad flag is one error", async () => {
    expect(await meta("md d4 y\r\nmd d4 q q\r\n")).toBe("CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n");
  });
});

describe("ma", () => {
  test("increments by one by default; D sets the delta; MD, M-, MI, M+ switch modes; decr stops at 0", async () => {
    await meta("ms a1 2\r\n10\r\n");
    const reply = await meta("ma a1 v\r\nma a1 D5 v\r\nma a1 MD v\r\nma a1 M- D100 v\r\nma a1 MI v\r\nma a1 M+ v\r\nma a1\r\n");
    expect(reply).toBe("VA 2\r\n11\r\nVA 2\r\n16\r\nVA 2\r\n15\r\nVA 1\r\n0\r\nVA 1\r\n1\r\nVA 1\r\n2\r\nHD\r\n");
  });

  test("a miss is NF; N creates it with J's initial value and TTL; t, c, k and O come back", async () => {
    const reply = await meta("ma a2 O1 k\r\nma a2 N100 J41 v t k O2\r\nma a2 v c\r\nma a2b t N100 q\r\nma a2b t\r\n");
    // q hides an update, not a creation.
    expect(reply).toMatch(/^NF O1 ka2\r\nVA 2 t(99|100) ka2 O2\r\n41\r\nVA 2 c\d+\r\n42\r\nHD t-1\r\nHD t(99|100)\r\n$/);
  });

  test("incr wraps at 2^64", async () => {
    expect(await meta("ma a3 N0 J18446744073709551615 v\r\nma a3 v\r\n")).toBe("VA 20\r\n18446744073709551615\r\nVA 1\r\n0\r\n");
  });

  test("C compares the CAS; E sets the new one; T sets the TTL on success", async () => {
    await meta("ms a4 1\r\n1\r\n");
    const cas = casIn(await meta("mg a4 c\r\n"));
    const reply = await meta(`ma a4 C${Number(cas) + 1} v\r\nma a4 C${cas} E777 T100 v c t\r\n`);
    expect(reply).toMatch(/^EX\r\nVA 1 c777 t(99|100)\r\n2\r\n$/);
  });

  test("q hides every update, the value too, and NF; errors stay", async () => {
    await meta("ms a5 1\r\n5\r\nms a6 1\r\nx\r\n");
    expect(await meta("ma a5 q v\r\nma a5 q\r\nma a-miss q\r\nma a6 q\r\nmg a5 v\r\n")).toBe(
      "CLIENT_ERROR cannot increment or decrement non-numeric value\r\nVA 1\r\n7\r\n",
    );
  });

  test("bad tokens", async () => {
    expect(await meta("ma a5 Dx\r\nma a5 Jx\r\nma a5 MX\r\nma a5 MDD\r\n")).toBe(
      "CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR invalid or duplicate flag\r\n",
    );
  });
});

describe("mn and me", () => {
  test("mn answers MN, ending a pipeline of quiet commands that answered only what was not nominal", async () => {
    const reply = await c.request(
      "ms p1 1 q\r\na\r\nms p2 1 q\r\nb\r\nmg p1 v q k\r\nmg p-miss v q k\r\nmg p2 v q k\r\nmd p-miss q\r\nms p1 1 ME q\r\nc\r\nmn\r\n",
      "MN\r\n",
    );
    expect(reply).toBe("VA 1 kp1\r\na\r\nVA 1 kp2\r\nb\r\nNS\r\nMN\r\n");
  });

  test("me prints the item's metadata as memcached does; a miss is EN", async () => {
    await meta("ms e1 3 T0\r\nabc\r\n");
    const reply = await c.request("me e1\r\nme e-miss\r\n", "EN\r\n");
    expect(reply).toMatch(/^ME e1 exp=-1 la=\d+ cas=\d+ fetch=no cls=1 size=64\r\nEN\r\n$/);
  });
});

describe("stale-while-revalidate", () => {
  test("md I, then the first mg with R wins (W X), a concurrent one sees X Z, and ms with the winner's CAS makes it fresh", async () => {
    const other = await RawClient.connect(server.port);
    try {
      await meta("ms w1 3 T0\r\nold\r\n");
      expect(await meta("md w1 I\r\n")).toBe("HD\r\n");
      const winner = await meta("mg w1 v c R30\r\n");
      expect(winner).toMatch(/^VA 3 c\d+ X W\r\nold\r\n$/);
      expect(await meta("mg w1 v c R30\r\n", other)).toBe(`VA 3 c${casIn(winner)} Z X\r\nold\r\n`);
      expect(await meta(`ms w1 3 C${casIn(winner)}\r\nnew\r\n`)).toBe("HD\r\n");
      expect(await meta("mg w1 v R30\r\n", other)).toBe("VA 3\r\nnew\r\n");
    } finally {
      other.close();
    }
  });

  test("ms I with an older CAS stores the value but leaves it stale (X) with its win already sent (Z)", async () => {
    await meta("ms w2 3 T0\r\nold\r\n");
    const before = casIn(await meta("mg w2 c\r\n"));
    await meta("md w2 I\r\n");
    const winner = await meta("mg w2 v c\r\n");
    expect(winner).toMatch(/ X W\r\n/);
    // A newer CAS than the item's is refused; an older one is taken, as stale.
    const reply = await meta(`ms w2 3 C${Number(casIn(winner)) + 1} I\r\nbad\r\nms w2 3 C${before} I\r\nmid\r\nmg w2 v\r\n`);
    expect(reply).toBe("EX\r\nHD\r\nVA 3 Z X\r\nmid\r\n");
    expect(await meta("ms w2 3 T0\r\nnew\r\nmg w2 v\r\n")).toBe("HD\r\nVA 3\r\nnew\r\n");
  });
});

describe("virtual keys", () => {
  test("mg on a virtual key runs the Lua method as get does", async () => {
    const reply = await meta("mg quota:new:mq:10:day v\r\nmg quota:addandcheck:mq:5 v k O7\r\nmg quota:addandcheck:mq:50 s\r\nmg set:count:mq-none v\r\n");
    expect(reply).toBe("VA 7\r\nCREATED\r\nVA 8 kquota:addandcheck:mq:5 O7\r\nQUOTA_OK\r\nHD s14\r\nVA 16\r\nERROR_CACHE_MISS\r\n");
  });

  test("a colon key that names no object type is an ordinary key", async () => {
    expect(await meta("ms plain:key:x 1\r\nv\r\nmg plain:key:x v\r\n")).toBe("HD\r\nVA 1\r\nv\r\n");
  });
});

describe("against Debian's memcached 1.6.18", () => {
  let memcached: Subprocess | null = null;
  let mcPort = 0;
  // A fresh cacheismo, so that both servers start from the same empty cache and CAS counter.
  let fresh: SpawnedServer;

  beforeAll(async () => {
    fresh = await spawnCacheismo(["-t", "1"]);
    if (!(await Bun.file("/usr/bin/memcached").exists())) return;
    mcPort = freePort();
    memcached = Bun.spawn(["/usr/bin/memcached", "-u", "root", "-l", "127.0.0.1", "-p", String(mcPort), "-U", "0"], { stdout: "ignore", stderr: "ignore" });
    await waitForPort(mcPort);
  });

  afterAll(async () => {
    await fresh.kill();
    memcached?.kill();
    await memcached?.exited;
  });

  // Only what both versions answer alike: 1.6.45's additions (E, md x, ms N, md q hiding NF,
  // decoded base64 keys over 187 bytes) are tested above.
  const script =
    "ms k1 2 T0 F5 c k Oxx\r\nhi\r\nmg k1 v f s t h k Oa1\r\nmg k1 h q\r\nmg nokey v q k Oab\r\nmg nokey v k Oab\r\n" +
    "ms s1 3 T0\r\nold\r\nmd s1 I\r\nmg s1 v R30\r\nmg s1 v R30\r\nms s1 3 C999999 I\r\nnew\r\nmg s1 v\r\n" +
    "mg nov v N30\r\nmg nov v N30\r\nms r1 1 T10\r\nx\r\nmg r1 R30\r\nmg r1 R30\r\n" +
    "mg o1 t N30\r\nmg o1 t\r\nma o2 t N100 v\r\nma o3 N100 t\r\nma o4 N100 q\r\nma o4 t\r\nma o4 q\r\n" +
    "ma c1\r\nma c1 N0 J10 v t\r\nma c1 MD D20 v\r\nma c1 M- v q\r\nma c1 q\r\nms c2 2 F7\r\n99\r\nma c2 v k Oq\r\n" +
    "ms Zm9v 2 b k\r\nhi\r\nmg Zm9v b k v\r\nmg foo k v\r\nset bar 0 0 1\r\nb\r\nmg YmFy b k v\r\nmg !!!! b v\r\nmg bm9uZQ== b k O1\r\n" +
    "ms ap 2 MA\r\nhi\r\nms ap 2 ME\r\nyy\r\nms ap 2 MA\r\nzz\r\nms ap 2 MP\r\nxx\r\nms nr 2 MR\r\nyy\r\nmg ap v\r\nms ap 2 MZ q\r\nzz\r\n" +
    "ms k9 5 T0\r\nhel\r\nlo\r\nmg k1 zz\r\nmg k1 v v\r\nmg k1 Tabc\r\nmg k1 O123456789012345678901234567890123\r\nms k1 abc\r\n" +
    "md k1 zz\r\nma k1 Dx\r\nma k1 MX\r\nmd k1 C1\r\nmd k1 k\r\nmd k1 k O1\r\nmn\r\n";

  /** A seeded stream of meta requests (and a few classic ones) over three keys, each followed by mn. */
  function randomRequests(seed: number, count: number): string[] {
    let state = seed;
    const next = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return (state >>> 8) % n;
    };
    const pick = (pool: string[], most: number): string => {
      const left = [...pool];
      const chosen: string[] = [];
      for (let n = next(most + 1); n > 0 && left.length > 0; n--) chosen.push(left.splice(next(left.length), 1)[0]);
      return chosen.join(" ");
    };
    const requests: string[] = [];
    for (let i = 0; i < count; i++) {
      const key = ["a", "b", "c"][next(3)];
      const r = next(100);
      if (r < 35) requests.push(`mg ${key} ${pick(["v", "c", "f", "s", "t", "h", "k", "O1", "q", "u", "N30", "R30", "T60"], 5)}\r\n`);
      else if (r < 60) {
        const value = ["1", "22", "xyz", "9"][next(4)];
        requests.push(`ms ${key} ${value.length} ${pick(["c", "k", "O2", "q", "T0", "T100", "F5", "MS", "ME", "MA", "MP", "MR", "C1", "C3", "I"], 3)}\r\n${value}\r\n`);
      } else if (r < 75) requests.push(`md ${key} ${pick(["k", "O3", "q", "I", "T30", "C2", "C5"], 3)}\r\n`);
      else if (r < 95) requests.push(`ma ${key} ${pick(["v", "c", "t", "k", "O4", "q", "N0", "J5", "D3", "MD", "MI", "M+", "M-", "T50", "C4"], 4)}\r\n`);
      else requests.push([`get ${key}\r\n`, `gets ${key}\r\n`, `set ${key} 0 0 1\r\n7\r\n`, `incr ${key} 2\r\n`][next(4)]);
    }
    return requests;
  }

  /** The replies to each request, split at the mn that follows it. */
  async function repliesTo(port: number, requests: string[]): Promise<string[]> {
    const client = await RawClient.connect(port);
    try {
      const text = await client.request(requests.map((r) => `${r}mn\r\n`).join(""), (t) => t.split("MN\r\n").length > requests.length);
      return text.split("MN\r\n").slice(0, requests.length);
    } finally {
      client.close();
    }
  }

  for (const seed of [1, 2, 3]) {
    test(`seed ${seed}: 400 random meta requests get the same replies, but for md/ma q hiding NF (1.6.45)`, async () => {
      if (memcached === null) throw new Error("/usr/bin/memcached is not installed (apt-get install memcached)");
      const keys = ["a", "b", "c"].map((k) => `${k}${seed}`);
      const requests = randomRequests(seed, 400).map((r) => r.replace(/^(\w+) ([abc]) /, (_, cmd: string, k: string) => `${cmd} ${keys["abc".indexOf(k)]} `));
      const [theirs, ours] = await Promise.all([repliesTo(mcPort, requests), repliesTo(fresh.port, requests)]);
      for (let i = 0; i < requests.length; i++) {
        if (theirs[i].startsWith("NF") && ours[i] === "" && / q( |\r)/.test(requests[i])) continue;
        expect({ request: requests[i], reply: ours[i] }).toEqual({ request: requests[i], reply: theirs[i] });
      }
    });
  }

  test("the same meta script gets the same replies", async () => {
    if (memcached === null) throw new Error("/usr/bin/memcached is not installed (apt-get install memcached)");
    const ours = await RawClient.connect(fresh.port);
    const theirs = await RawClient.connect(mcPort);
    try {
      const [a, b] = await Promise.all([ours.request(script, "MN\r\n"), theirs.request(script, "MN\r\n")]);
      expect(a).toBe(b);
    } finally {
      ours.close();
      theirs.close();
    }
  });
});

describe("text protocol edge cases answered as memcached 1.6.45 does", () => {
  test("a request line that looks like HTTP closes the connection without a reply", async () => {
    for (const line of ["GET / HTTP/1.0", "PUT /x HTTP/1.1", "DELETE HTTP/1.1"]) {
      const client = await RawClient.connect(server.port);
      client.send(`${line}\r\nversion\r\n`);
      expect(await client.waitClosed()).toBe("");
    }
  });

  test("noreply silences error replies too: the next reply is the next command's", async () => {
    const reply = await c.request("delete k 10 noreply\r\nincr k noreply\r\ntouch k noreply\r\nset k 0 0 noreply\r\nversion\r\n");
    expect(reply).toStartWith("VERSION ");
  });

  test("flush_all with an absolute time flushes at that time; a later one replaces it; noreply and 0", async () => {
    const now = Math.floor(Date.now() / 1000);
    await c.request("set fa 0 0 1\r\nx\r\n");
    expect(await c.request(`flush_all ${now + 3600}\r\nget fa\r\n`, "END\r\n")).toBe("OK\r\nVALUE fa 0 1\r\nx\r\nEND\r\n");
    expect(await c.request(`flush_all ${now - 3600}\r\nget fa\r\n`, "END\r\n")).toBe("OK\r\nEND\r\n");
    await c.request("set fa 0 0 1\r\nx\r\n");
    expect(await c.request("flush_all noreply\r\nget fa\r\nflush_all 0\r\n", "OK\r\n")).toBe("END\r\nOK\r\n");
  });

  test("-F: flush_all answers CLIENT_ERROR flush_all not allowed and keeps the items", async () => {
    const noFlush = await spawnCacheismo(["-F"]);
    try {
      const client = await RawClient.connect(noFlush.port);
      const reply = await client.request("set f 0 0 1\r\nx\r\nflush_all\r\nflush_all noreply\r\nget f\r\n", "END\r\n");
      expect(reply).toBe("STORED\r\nCLIENT_ERROR flush_all not allowed\r\nVALUE f 0 1\r\nx\r\nEND\r\n");
      client.close();
    } finally {
      await noFlush.kill();
    }
  });

  test("a malformed storage line whose length is readable swallows its data block", async () => {
    const reply = await c.request("cas k 0 0 6 \r\nabcdef\r\nset k 0 0 1 2 3\r\nx\r\nset k 0 0\r\nversion\r\n", /VERSION .*\r\n$/);
    expect(reply).toStartWith("CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\nERROR\r\nVERSION ");
  });

  test("append and prepend past the item size limit answer NOT_STORED and keep the old value", async () => {
    await c.request(`set big 0 0 3000\r\n${"a".repeat(3000)}\r\n`);
    const reply = await c.request(`append big 0 0 2000\r\n${"b".repeat(2000)}\r\nprepend big 0 0 2000\r\n${"b".repeat(2000)}\r\nmg big s\r\n`, "s3000\r\n");
    expect(reply).toBe("NOT_STORED\r\nNOT_STORED\r\nHD s3000\r\n");
  });

  test("a long get line with leading spaces arriving in pieces is answered (memcached skips up to 100 spaces)", async () => {
    const keys = Array.from({ length: 400 }, (_, i) => `missing-key-${i}`).join(" ");
    const line = `${" ".repeat(50)}get ${keys}\r\n`;
    c.send(line.slice(0, 2500));
    await Bun.sleep(20); // let the first piece arrive on its own
    expect(await c.request(line.slice(2500), "END\r\n")).toBe("END\r\n");
  });

  test("a line of nothing but spaces is a bad command line; an empty one an unknown command", async () => {
    expect(await c.request("    \r\n\r\n", "ERROR\r\n")).toBe("CLIENT_ERROR bad command line format\r\nERROR\r\n");
  });

  test("slabs, lru and lru_crawler answer as memcached does, never a bare ERROR for a valid form", async () => {
    const cases: [string, string][] = [
      ["slabs automove 1", "OK"],
      ["slabs automove x", "CLIENT_ERROR bad command line format"],
      ["slabs automove 3", "ERROR"],
      ["slabs automove ratio 0.8", "OK"],
      ["slabs reassign 1 1", "SAME src and dst class are identical"],
      ["slabs reassign 1 2", "BADCLASS invalid src or dst class id"],
      ["slabs reassign a b", "CLIENT_ERROR bad command line format"],
      ["lru_crawler crawl all", "OK"],
      ["lru_crawler crawl 1,2", "OK"],
      ["lru_crawler crawl x", "BADCLASS invalid class id"],
      ["lru_crawler sleep 100", "OK"],
      ["lru_crawler sleep x", "CLIENT_ERROR bad command line format"],
      ["lru_crawler sleep 2000000", "CLIENT_ERROR sleep must be one second or less"],
      ["lru_crawler tocrawl 5", "OK"],
      ["lru_crawler enable", "OK"],
      ["lru_crawler disable", "OK"],
      ["lru mode segmented", "OK"],
      ["lru temp_ttl 60", "OK"],
      ["lru tune 10 10 0.1 2.0", "OK"],
      ["lru tune 50 50 0.1 2.0", "ERROR hot and warm pcts must not exceed 80"],
      ["lru bogus", "ERROR"],
    ];
    const reply = await c.request(`${cases.map(([request]) => `${request}\r\n`).join("")}version\r\n`, /VERSION .*\r\n$/);
    expect(reply.split("\r\n").slice(0, cases.length)).toEqual(cases.map(([, answer]) => answer));
    expect(await c.request("slabs automove 3 noreply\r\nversion\r\n")).toStartWith("VERSION ");
  });

  test("lru_crawler metadump lists every live item, keys URL-encoded, then END, over many slices", async () => {
    const dumped = await spawnCacheismo(["-t", "1"]);
    try {
      const client = await RawClient.connect(dumped.port);
      const n = 20_000;
      let sets = "";
      for (let i = 0; i < n; i++) sets += `set key:${i} 0 0 1 noreply\r\nx\r\n`;
      await client.request(`${sets}set a%b 7 1000 2\r\nhi\r\nget a%b\r\n`, "END\r\n");
      const dump = await client.request("lru_crawler metadump all\r\n", "END\r\n");
      const lines = dump.split("\n").slice(0, -1);
      expect(lines.at(-1)).toBe("END\r");
      expect(lines.length).toBe(n + 2);
      expect(new Set(lines).size).toBe(n + 2);
      expect(lines.find((l) => l.startsWith("key=a%25b "))).toMatch(/^key=a%25b exp=\d+ la=\d+ cas=\d+ fetch=yes cls=1 size=64$/);
      expect(lines.find((l) => l.startsWith("key=key%3A0 "))).toMatch(/^key=key%3A0 exp=-1 la=\d+ cas=\d+ fetch=no cls=1 size=64$/);
      expect(await client.request("lru_crawler metadump 2\r\nlru_crawler metadump x\r\n", "id\r\n")).toBe("END\r\nBADCLASS invalid class id\r\n");
      client.close();
      const tool = "/usr/share/memcached/scripts/memcached-tool";
      if (await Bun.file(tool).exists()) {
        const out = await new Response(Bun.spawn([tool, `127.0.0.1:${dumped.port}`, "dump"], { stdout: "pipe", stderr: "ignore" }).stdout).text();
        expect(out).toContain("add a%b 7 ");
        expect(out.split("\n").filter((l) => l.startsWith("add key:")).length).toBe(n);
      }
    } finally {
      await dumped.kill();
    }
  });
});
