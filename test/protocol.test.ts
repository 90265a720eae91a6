import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { defaultConfig } from "../src/config.ts";
import { type RunningServer, startServer } from "../src/index.ts";
import { type ProtocolContext, TextProtocol } from "../src/protocol/text.ts";
import { Counters, CounterTable } from "../src/stats.ts";
import { Store } from "../src/store/store.ts";
import { RawClient } from "./helpers/raw-client.ts";

/** A protocol instance over a fresh store, fed directly (no sockets). */
function freshProtocol(): TextProtocol {
  const config = { ...defaultConfig(), maxItemSizeBytes: 4096 };
  const store = new Store({ memoryBytes: 1024 * 1024, maxItemBytes: config.maxItemSizeBytes });
  const counters = new Counters();
  const ctx: ProtocolContext = {
    store,
    counters,
    config,
    stats: { config, store, counterTable: new CounterTable(counters.cells.buffer as SharedArrayBuffer), threads: 1, startedAt: store.clock.now, extraStats: [] },
    virtualKey: null,
    router: null,
    routingKey: null,
    auth: null,
    latency: null,
    flushAll: (delay) => {
      if (delay <= 0) store.flushAll();
    },
    madeGarbage: () => {},
    shutdown: () => {},
  };
  return new TextProtocol(ctx);
}

function run(chunks: Uint8Array[]): string {
  const p = freshProtocol();
  let text = "";
  for (const c of chunks) {
    p.feed(c);
    text += Buffer.from(p.out.bytes.subarray(0, p.out.length)).toString("latin1");
    p.out.length = 0;
  }
  return text;
}

const SESSION =
  "set foo 5 0 3\r\nbar\r\n" +
  "get foo\r\n" +
  "gets foo missing foo\r\n" +
  "set n 0 0 2 noreply\r\n10\r\n" +
  "incr n 5\r\ndecr n 100\r\nincr nothere 1\r\n" +
  "append foo 0 0 2\r\nXY\r\nprepend foo 0 0 1\r\nA\r\nget foo\r\n" +
  "add foo 0 0 1\r\nz\r\nreplace nope 0 0 1\r\nz\r\n" +
  "set bad 0 0 1\r\nzXX\r\n" +
  `set big 0 0 5000\r\n${"b".repeat(5000)}\r\n` +
  "set empty 0 0 0\r\n\r\nget empty\r\n" +
  "touch foo 100\r\ndelete foo\r\ndelete foo\r\nbogus\r\n" +
  "set lf 0 0 2\nhi\r\nget lf\n" +
  "version\r\n";

describe("text protocol parser", () => {
  test("a session split at every byte offset gets identical replies", () => {
    const bytes = new TextEncoder().encode(SESSION);
    const whole = run([bytes]);
    expect(whole).toContain("VALUE foo 5 6\r\nAbarXY\r\nEND\r\n");
    for (let cut = 1; cut < bytes.length; cut++) {
      const split = run([bytes.subarray(0, cut), bytes.subarray(cut)]);
      if (split !== whole) throw new Error(`split at ${cut} differs:\n${split}\n---\n${whole}`);
    }
  });

  test("a session fed one byte at a time gets identical replies", () => {
    const bytes = new TextEncoder().encode(SESSION);
    const whole = run([bytes]);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
    expect(run(chunks)).toBe(whole);
  });

  test("replies to the recorded session as memcached does", () => {
    const whole = run([new TextEncoder().encode(SESSION)]);
    expect(whole).toBe(
      "STORED\r\n" +
        "VALUE foo 5 3\r\nbar\r\nEND\r\n" +
        "VALUE foo 5 3 1\r\nbar\r\nVALUE foo 5 3 1\r\nbar\r\nEND\r\n" +
        "15\r\n0\r\nNOT_FOUND\r\n" +
        "STORED\r\nSTORED\r\nVALUE foo 5 6\r\nAbarXY\r\nEND\r\n" +
        "NOT_STORED\r\nNOT_STORED\r\n" +
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n" +
        "SERVER_ERROR object too large for cache\r\n" +
        "STORED\r\nVALUE empty 0 0\r\n\r\nEND\r\n" +
        "TOUCHED\r\nDELETED\r\nNOT_FOUND\r\nERROR\r\n" +
        "STORED\r\nVALUE lf 0 2\r\nhi\r\nEND\r\n" +
        "VERSION 1.6.21-cacheismo-0.1.0\r\n",
    );
  });
});

describe("memcached replies over TCP", () => {
  let server: RunningServer;
  let c: RawClient;
  beforeAll(async () => {
    server = await startServer({ port: 0, memoryLimitMb: 8 });
    c = await RawClient.connect(server.port);
  });
  afterAll(async () => {
    c.close();
    await server.stop();
  });

  test("storage commands answer STORED, NOT_STORED, EXISTS and NOT_FOUND", async () => {
    expect(await c.request("set k 0 0 1\r\na\r\n")).toBe("STORED\r\n");
    expect(await c.request("add k 0 0 1\r\nb\r\n")).toBe("NOT_STORED\r\n");
    expect(await c.request("replace k 0 0 1\r\nc\r\n")).toBe("STORED\r\n");
    expect(await c.request("replace none 0 0 1\r\nc\r\n")).toBe("NOT_STORED\r\n");
    expect(await c.request("append none 0 0 1\r\nc\r\n")).toBe("NOT_STORED\r\n");
    const gets = await c.request("gets k\r\n", "END\r\n");
    const cas = Number(/VALUE k 0 1 (\d+)/.exec(gets)![1]);
    expect(await c.request(`cas k 0 0 1 ${cas + 1000}\r\nd\r\n`)).toBe("EXISTS\r\n");
    expect(await c.request(`cas k 0 0 1 ${cas}\r\nd\r\n`)).toBe("STORED\r\n");
    expect(await c.request(`cas missing 0 0 1 ${cas}\r\nd\r\n`)).toBe("NOT_FOUND\r\n");
  });

  test("flags are 32-bit unsigned and come back as stored", async () => {
    expect(await c.request("set f 4294967295 0 1\r\nx\r\n")).toBe("STORED\r\n");
    expect(await c.request("get f\r\n", "END\r\n")).toBe("VALUE f 4294967295 1\r\nx\r\nEND\r\n");
    // As in memcached, the refused line's data block is then read as a command of its own.
    expect(await c.request("set f 4294967296 0 1\r\nx\r\n", "\r\nERROR\r\n")).toBe("CLIENT_ERROR bad command line format\r\nERROR\r\n");
  });

  test("incr wraps at 2^64, decr stops at 0, non-numeric values are refused", async () => {
    await c.request("set n 0 0 20\r\n18446744073709551615\r\n");
    expect(await c.request("incr n 2\r\n")).toBe("1\r\n");
    expect(await c.request("decr n 5\r\n")).toBe("0\r\n");
    await c.request("set s 0 0 3\r\nabc\r\n");
    expect(await c.request("incr s 1\r\n")).toBe("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    expect(await c.request("incr n abc\r\n")).toBe("CLIENT_ERROR invalid numeric delta argument\r\n");
    expect(await c.request("incr n -1\r\n")).toBe("CLIENT_ERROR invalid numeric delta argument\r\n");
    expect(await c.request("decr none 1\r\n")).toBe("NOT_FOUND\r\n");
  });

  test("incr reads values and deltas as memcached's strtoull does (found by the differential test)", async () => {
    // Each value with what `incr v 1` answers in memcached 1.6.18.
    const cases: [string, string][] = [
      ["00000000000000000000000042", "43"], // leading zeros, however many
      [" 5", "6"], // leading whitespace
      ["\t7", "8"],
      ["+5", "6"],
      ["5 6x", "6"], // a space ends the number; anything may follow
      ["12\0", "13"], // so does NUL
      ["-0", "1"],
      ["-5", "CLIENT_ERROR cannot increment or decrement non-numeric value"],
      ["5x", "CLIENT_ERROR cannot increment or decrement non-numeric value"],
      ["18446744073709551616", "CLIENT_ERROR cannot increment or decrement non-numeric value"],
    ];
    for (const [value, reply] of cases) {
      await c.request(`set v 0 0 ${value.length}\r\n${value}\r\n`);
      expect(`${value} -> ${await c.request("incr v 1\r\n")}`).toBe(`${value} -> ${reply}\r\n`);
    }
    await c.request("set v 0 0 2\r\n10\r\n");
    expect(await c.request("incr v -0\r\n")).toBe("10\r\n");
    expect(await c.request("incr v +3\r\n")).toBe("13\r\n");
    expect(await c.request("decr v 007\r\n")).toBe("6\r\n");
  });

  test("keys longer than 250 bytes are refused and the data block is not run as a command", async () => {
    const k250 = "k".repeat(250);
    const k251 = "k".repeat(251);
    expect(await c.request(`set ${k250} 0 0 1\r\nx\r\n`)).toBe("STORED\r\n");
    expect(await c.request(`get ${k250}\r\n`, "END\r\n")).toBe(`VALUE ${k250} 0 1\r\nx\r\nEND\r\n`);
    expect(await c.request(`set ${k251} 0 0 1\r\nx\r\n`)).toBe("CLIENT_ERROR bad command line format\r\n");
    expect(await c.request(`get ${k251}\r\n`)).toBe("CLIENT_ERROR bad command line format\r\n");
    expect(await c.request("version\r\n")).toStartWith("VERSION ");
  });

  test("a value above the item size limit is swallowed with SERVER_ERROR and the connection survives", async () => {
    await c.request("set big 0 0 1\r\nx\r\n");
    const n = 2 * 1024 * 1024;
    expect(await c.request(`set big 0 0 ${n}\r\n${"a".repeat(n)}\r\n`)).toBe("SERVER_ERROR object too large for cache\r\n");
    // memcached drops the old value on a failed set so stale data cannot persist.
    expect(await c.request("get big\r\n")).toBe("END\r\n");
    expect(await c.request("version\r\n")).toStartWith("VERSION ");
  });

  test("bad command lines get ERROR or CLIENT_ERROR and the connection stays open", async () => {
    expect(await c.request("bogus\r\n")).toBe("ERROR\r\n");
    expect(await c.request("\r\n")).toBe("ERROR\r\n");
    expect(await c.request("get\r\n")).toBe("ERROR\r\n");
    expect(await c.request("set k 0 0\r\n")).toBe("ERROR\r\n");
    expect(await c.request("set k abc 0 1\r\nx\r\n", "\r\nERROR\r\n")).toBe("CLIENT_ERROR bad command line format\r\nERROR\r\n");
    expect(await c.request("set k 0 0 -1\r\n")).toBe("CLIENT_ERROR bad command line format\r\n");
    expect(await c.request("delete a b c d e\r\n")).toBe("ERROR\r\n");
    expect(await c.request("delete a 5\r\n")).toBe("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
    expect(await c.request("touch k abc\r\n")).toBe("CLIENT_ERROR invalid exptime argument\r\n");
    expect(await c.request("stats nosuchgroup\r\n")).toBe("ERROR\r\n");
    expect(await c.request("shutdown\r\n")).toBe("ERROR: shutdown not enabled\r\n");
    expect(await c.request("ge\u0000t\u00ff k\r\n")).toBe("ERROR\r\n");
    expect(await c.request("version\r\n")).toStartWith("VERSION ");
  });

  test("noreply suppresses replies", async () => {
    expect(await c.request("set q 0 0 1 noreply\r\nx\r\nget q\r\n", "END\r\n")).toBe("VALUE q 0 1\r\nx\r\nEND\r\n");
    expect(await c.request("delete q noreply\r\nget q\r\n", "END\r\n")).toBe("END\r\n");
  });

  test("gat and gats return the value and set a new expiry", async () => {
    await c.request("set g 7 0 2\r\nhi\r\n");
    expect(await c.request("gat 100 g missing\r\n", "END\r\n")).toBe("VALUE g 7 2\r\nhi\r\nEND\r\n");
    expect(await c.request("gats -1 g\r\n", "END\r\n")).toMatch(/^VALUE g 7 2 \d+\r\nhi\r\nEND\r\n$/);
    expect(await c.request("get g\r\n")).toBe("END\r\n");
  });

  test("items expire after their exptime", async () => {
    await c.request("set t 0 1 1\r\nx\r\n");
    expect(await c.request("get t\r\n", "END\r\n")).toContain("VALUE t");
    await Bun.sleep(2100);
    expect(await c.request("get t\r\n")).toBe("END\r\n");
  });

  test("flush_all empties the cache now or after a delay", async () => {
    await c.request("set a 0 0 1\r\nx\r\n");
    expect(await c.request("flush_all 1\r\n")).toBe("OK\r\n");
    expect(await c.request("get a\r\n", "END\r\n")).toContain("VALUE a");
    await Bun.sleep(1200);
    expect(await c.request("get a\r\n")).toBe("END\r\n");
    await c.request("set a 0 0 1\r\nx\r\n");
    expect(await c.request("flush_all\r\n")).toBe("OK\r\n");
    expect(await c.request("get a\r\n")).toBe("END\r\n");
  });

  test("a flush_all delayed by weeks, or to a unix time, flushes nothing now (found by the differential test)", async () => {
    // 25 days is beyond the longest setTimeout (2^31 - 1 ms), which would have fired at once.
    for (const delay of [25 * 86_400, 30 * 86_400, Math.floor(Date.now() / 1000) + 86_400]) {
      await c.request("set later 0 0 1\r\nx\r\n");
      expect(await c.request(`flush_all ${delay}\r\n`)).toBe("OK\r\n");
      await Bun.sleep(50);
      expect(await c.request("get later\r\n", "END\r\n")).toBe("VALUE later 0 1\r\nx\r\nEND\r\n");
    }
    expect(await c.request("flush_all 0\r\n")).toBe("OK\r\n");
  });

  test("an immediate flush_all cancels a pending delayed one, as memcached's does", async () => {
    expect(await c.request("flush_all 1\r\n")).toBe("OK\r\n");
    expect(await c.request("flush_all\r\n")).toBe("OK\r\n");
    await c.request("set survivor 0 0 1\r\nx\r\n");
    await Bun.sleep(1500);
    expect(await c.request("get survivor\r\n", "END\r\n")).toBe("VALUE survivor 0 1\r\nx\r\nEND\r\n");
  });

  test("stats report memcached's names with exact item bytes", async () => {
    await c.request("flush_all\r\n");
    await c.request("set s1 0 0 100\r\n" + "x".repeat(100) + "\r\n");
    const stats = await c.request("stats\r\n", "END\r\n");
    const map = Object.fromEntries([...stats.matchAll(/STAT (\S+) (\S+)\r\n/g)].map((m) => [m[1], m[2]]));
    for (const name of ["curr_items", "bytes", "limit_maxbytes", "evictions", "get_hits", "get_misses", "cmd_get", "cmd_set", "curr_connections", "total_items", "uptime"]) {
      expect(map[name]).toBeDefined();
    }
    expect(map.curr_items).toBe("1");
    expect(map.bytes).toBe(String(160)); // 56 + 2 + 100 rounded up to 32
    expect(map.limit_maxbytes).toBe(String(8 * 1024 * 1024));
    expect(await c.request("stats settings\r\n", "END\r\n")).toContain("STAT item_size_max 1048576\r\n");
    expect(await c.request("stats items\r\n", "END\r\n")).toContain("STAT items:1:number 1\r\n");
    expect(await c.request("stats slabs\r\n", "END\r\n")).toContain("STAT active_slabs 1\r\n");
    expect(await c.request("stats reset\r\n")).toBe("RESET\r\n");
  });

  test("the crawler frees expired items with no request touching them, counted in stats and zeroed by stats reset", async () => {
    const statsMap = async (): Promise<Record<string, string>> =>
      Object.fromEntries([...(await c.request("stats\r\n", "END\r\n")).matchAll(/STAT (\S+) (\S+)\r\n/g)].map((m) => [m[1], m[2]]));
    await c.request("flush_all\r\n");
    const before = await statsMap();
    for (let i = 0; i < 10; i++) await c.request(`set ttl${i} 0 1 1\r\nx\r\n`);
    await c.request("set lasting 0 0 1\r\nx\r\n");
    await Bun.sleep(2300); // the one-second TTL runs out on the next clock tick but one, then a crawl timer fires
    const after = await statsMap();
    expect(after.curr_items).toBe("1");
    expect(Number(after.crawler_reclaimed) - Number(before.crawler_reclaimed)).toBe(10);
    expect(Number(after.expired_unfetched) - Number(before.expired_unfetched)).toBe(10);
    expect(Number(after.crawler_items_checked)).toBeGreaterThanOrEqual(11);
    expect(await c.request("stats reset\r\n")).toBe("RESET\r\n");
    const reset = await statsMap();
    for (const name of ["crawler_reclaimed", "expired_unfetched", "crawler_items_checked"]) expect(reset[name]).toBe("0");
  });

  test("pipelined requests in one write are answered in order", async () => {
    let req = "";
    let expected = "";
    for (let i = 0; i < 2000; i++) {
      const v = `v${i}`.padEnd(32, "x");
      req += `set p${i} 0 0 32\r\n${v}\r\nget p${i}\r\n`;
      expected += `STORED\r\nVALUE p${i} 0 32\r\n${v}\r\nEND\r\n`;
    }
    expect(await c.request(req, (t: string) => t.length >= expected.length)).toBe(expected);
  });

  test("a 10,000-key multiget is answered in full", async () => {
    await c.request("set mk5 0 0 1\r\n5\r\n");
    const keys = Array.from({ length: 10000 }, (_, i) => `mk${i}`).join(" ");
    expect(await c.request(`get ${keys}\r\n`, "END\r\n")).toBe("VALUE mk5 0 1\r\n5\r\nEND\r\n");
  });

  test("quit closes the connection", async () => {
    const q = await RawClient.connect(server.port);
    q.send("quit\r\n");
    expect(await q.waitClosed()).toBe("");
  });
});

describe("what the parser relies on from the runtime", () => {
  test("bun:jsc still offers noInline (src/jit.ts's neverInline keeps the hot compiles small with it)", async () => {
    const jsc = (await import("bun:jsc")) as unknown as { noInline?: unknown };
    expect(typeof jsc.noInline).toBe("function");
  });
});

describe("replies of one data event", () => {
  test("go to the socket as they pile up past 256 KiB, in order, so the output buffer stays small", () => {
    const p = freshProtocol();
    const value = (i: number): string => String(i % 10).repeat(4000);
    const sets = Array.from({ length: 200 }, (_, i) => `set k${i} 0 0 4000\r\n${value(i)}\r\n`).join("");
    p.feed(Buffer.from(sets, "latin1"));
    p.out.length = 0;

    let sent = "";
    let largest = 0;
    p.onOutputGrown = () => {
      largest = Math.max(largest, p.out.length);
      sent += Buffer.from(p.out.bytes.subarray(0, p.out.length)).toString("latin1");
      p.consume(p.out.length); // a socket that takes everything
    };
    p.feed(Buffer.from(Array.from({ length: 200 }, (_, i) => `get k${i}\r\n`).join(""), "latin1"));
    largest = Math.max(largest, p.out.length);
    sent += Buffer.from(p.out.bytes.subarray(0, p.out.length)).toString("latin1");

    const expected = Array.from({ length: 200 }, (_, i) => `VALUE k${i} 0 4000\r\n${value(i)}\r\nEND\r\n`).join("");
    expect(sent).toBe(expected);
    expect(largest).toBeGreaterThanOrEqual(256 * 1024); // it was handed over at the threshold...
    expect(largest).toBeLessThan(256 * 1024 + 4100); // ...not after the whole 800 KB of replies
  });
});
