/**
 * Meta commands with --cluster: a request for a key the other node owns is forwarded to it (its
 * data block too) and answered in the client's order; a quiet one travels with an `mn` after it,
 * so that its reply, or the lack of one, is exactly what the owner gives (cluster/reply-shape.ts).
 * Two real nodes; replies are checked byte for byte against the owners asked directly.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { ProtocolError, ReplyKind, replyBodyEnd, type ScanState, scanReply } from "../src/cluster/reply-shape.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { ROOT, freePort, serverCommand, waitForPort } from "./helpers/spawn.ts";
import { rng } from "./helpers/rng.ts";

const ports = [freePort(), freePort()];
const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
const continuum = new Continuum(parseServerList(peers), "md5");
const procs: ReturnType<typeof Bun.spawn>[] = [];
const latin1 = (text: string): Uint8Array => Buffer.from(text, "latin1");
const ownerOf = (key: string): number => continuum.ownerIndex(latin1(key));

/** The first `n` keys `prefix<i>` that node `owner` owns. */
function keysOf(owner: number, prefix: string, n: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < n; i++) if (ownerOf(`${prefix}${i}`) === owner) keys.push(`${prefix}${i}`);
  return keys;
}

beforeAll(async () => {
  for (const port of ports) {
    procs.push(
      Bun.spawn([...serverCommand(), "-p", String(port), "-m", "16", "-e", "--cluster", "--peers", peers, "--self", `127.0.0.1:${port}`], {
        cwd: ROOT,
        stdout: "ignore",
        stderr: "ignore",
      }),
    );
  }
  await Promise.all(ports.map((port) => waitForPort(port)));
});
afterAll(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
});

async function flushBoth(): Promise<void> {
  for (const port of ports) {
    const c = await RawClient.connect(port);
    expect(await c.request("flush_all\r\n")).toBe("OK\r\n");
    c.close();
  }
}

describe("meta commands forwarded to the key's owner", () => {
  test("each meta command on a key the other node owns answers as the owner does, and changes the owner's item", async () => {
    await flushBoth();
    const [remote, counter] = keysOf(1, "mr", 2);
    const c = await RawClient.connect(ports[0]);
    const owner = await RawClient.connect(ports[1]);
    expect(await c.request(`ms ${remote} 5 F3 O9 k\r\nhello\r\n`)).toBe(`HD O9 k${remote}\r\n`);
    expect(await c.request(`mg ${remote} v f t s k O7\r\n`, "hello\r\n")).toBe(`VA 5 f3 t-1 s5 k${remote} O7\r\nhello\r\n`);
    // It lives on its owner only.
    expect(await owner.request(`mg ${remote} v\r\n`, "hello\r\n")).toBe("VA 5\r\nhello\r\n");
    expect(await c.request("stats\r\n", "END\r\n")).toContain("STAT curr_items 0\r\n");
    expect(await c.request(`ms ${remote} 1 ME\r\nx\r\n`)).toBe("NS\r\n");
    expect(await c.request(`ms ${remote} 1 C999999\r\nx\r\n`)).toBe("EX\r\n");
    expect(await c.request(`ms ${remote} 3 MA\r\n!!!\r\n`)).toBe("HD\r\n");
    expect(await c.request(`me ${remote}\r\n`)).toMatch(new RegExp(`^ME ${remote} exp=-1 la=\\d+ cas=\\d+ fetch=no cls=1 size=\\d+\\r\\n$`));
    expect(await c.request(`ma ${counter} N0 J10 v\r\n`, /\r\n.*\r\n$/)).toBe("VA 2\r\n10\r\n");
    expect(await c.request(`ma ${counter} MD D3 v\r\n`, /\r\n.*\r\n$/)).toBe("VA 1\r\n7\r\n");
    expect(await c.request(`ma ${remote} q\r\nmn\r\n`, "MN\r\n")).toBe("CLIENT_ERROR cannot increment or decrement non-numeric value\r\nMN\r\n");
    expect(await c.request(`md ${remote} q\r\nmg ${remote} v\r\nmd ${remote}\r\nme ${remote}\r\n`, "EN\r\nNF\r\nEN\r\n")).toBe("EN\r\nNF\r\nEN\r\n");
    expect(await owner.request(`mg ${counter} v\r\nmg ${remote} v\r\n`, "EN\r\n")).toBe("VA 1\r\n7\r\nEN\r\n");
    c.close();
    owner.close();
  });

  test("a pipeline mixing local and forwarded meta commands, quiet ones and mn answers byte for byte what the owners answer", async () => {
    const keys = [...keysOf(0, "pk", 4), ...keysOf(1, "pk", 4)];
    const requests = metaPipeline(7, keys, 400);
    // The reference: each request asked of its key's owner directly, a quiet one followed by mn.
    await flushBoth();
    const direct = await Promise.all(ports.map((p) => RawClient.connect(p)));
    let expected = "";
    for (const r of requests) {
      if (r.key === null) {
        expected += "MN\r\n";
        continue;
      }
      const reply = await direct[ownerOf(r.key)].request(`${r.text}mn\r\n`, "MN\r\n");
      expected += reply.slice(0, -4);
    }
    for (const d of direct) d.close();
    expect(expected).toContain("MN\r\n");
    expect(expected).toContain("VA ");
    // Through node 0, at random split points.
    await flushBoth();
    const c = await RawClient.connect(ports[0]);
    const bytes = latin1(requests.map((r) => r.text).join("") + "mn\r\n");
    const r = rng(11);
    for (let at = 0; at < bytes.length; ) {
      const n = 1 + Math.floor(r() * 300);
      c.send(bytes.subarray(at, at + n));
      at += n;
      if (r() < 0.3) await Bun.sleep(1);
    }
    const got = await c.readUntil((t) => t.length >= expected.length + 4);
    expect(got).toBe(`${expected}MN\r\n`);
    c.close();
  });

  test("an ms whose data block arrives in pieces is forwarded whole, a large one too", async () => {
    await flushBoth();
    const [remote] = keysOf(1, "split", 1);
    const [local] = keysOf(0, "split", 1);
    const c = await RawClient.connect(ports[0]);
    c.send(`ms ${remote} 10 T0 `);
    await Bun.sleep(20);
    c.send("F5\r\nhel");
    await Bun.sleep(20);
    c.send("lo12345");
    await Bun.sleep(20);
    c.send(`\r\nms ${local} 2 q\r\nok\r\nmg ${remote} v f\r\n`);
    expect(await c.readUntil((t) => t.endsWith("hello12345\r\n"))).toBe("HD\r\nVA 10 f5\r\nhello12345\r\n");
    const big = "b".repeat(300_000);
    c.send(`ms ${remote} ${big.length} q\r\n${big.slice(0, 1000)}`);
    await Bun.sleep(20);
    c.send(`${big.slice(1000)}\r\nmg ${remote} s v\r\nmn\r\n`);
    expect(await c.readUntil((t) => t.endsWith("MN\r\n"))).toBe(`VA ${big.length} s${big.length}\r\n${big}\r\nMN\r\n`);
    c.close();
  });

  test("a base64 key routes by its decoded bytes", async () => {
    await flushBoth();
    // A key node 1 owns whose base64 token node 0 would own: routing by the token would keep it here.
    let remote = "";
    let encoded = "";
    for (let i = 0; ; i++) {
      remote = `b64\xe9${i}`;
      encoded = Buffer.from(remote, "latin1").toString("base64");
      if (ownerOf(remote) === 1 && ownerOf(encoded) === 0) break;
    }
    const c = await RawClient.connect(ports[0]);
    expect(await c.request(latin1(`set ${remote} 0 0 2\r\nhi\r\n`))).toBe("STORED\r\n");
    expect(await c.request(`mg ${encoded} b v k\r\n`, "hi\r\n")).toBe(`VA 2 k${remote}\r\nhi\r\n`);
    expect(await c.request(`ms ${encoded} 3 b\r\nbye\r\n`)).toBe("HD\r\n");
    expect(await c.request(latin1(`get ${remote}\r\n`), "END\r\n")).toBe(`VALUE ${remote} 0 3\r\nbye\r\nEND\r\n`);
    c.close();
  });

  test("a virtual key routes by its object key, as get does", async () => {
    await flushBoth();
    // An object whose owner is node 1 while the whole virtual keys would stay on node 0.
    let obj = "";
    for (let i = 0; ; i++) {
      obj = `vo${i}`;
      if (ownerOf(obj) === 1 && ownerOf(`set:put:${obj}:alice`) === 0 && ownerOf(`set:count:${obj}`) === 0) break;
    }
    const c = await RawClient.connect(ports[0]);
    expect(await c.request(`mg set:new:${obj} v\r\nmg set:put:${obj}:alice v\r\n`, /SUCCESS\r\n$|MISS\r\n$/)).toBe("VA 7\r\nCREATED\r\nVA 7\r\nSUCCESS\r\n");
    const owner = await RawClient.connect(ports[1]);
    expect(await owner.request(`get set:count:${obj}\r\n`, "END\r\n")).toBe(`VALUE set:count:${obj} 0 1\r\n1\r\nEND\r\n`);
    c.close();
    owner.close();
  });
});

describe("peer meta replies are checked against the request", () => {
  const scan = (reply: string, kind: ReplyKind): number => {
    const state: ScanState = { scanned: 0, keyAt: 0, nextKeyAt: 0 };
    return scanReply(latin1(reply), 0, reply.length, kind, null, state);
  };

  test("a reply ends after its line, after VA's data block, and a quiet one at MN (which the client never sees)", () => {
    expect(scan("HD c5\r\nEN\r\n", ReplyKind.MetaSet)).toBe(7);
    expect(scan("VA 3 f1\r\nabc\r\nHD\r\n", ReplyKind.MetaGet)).toBe(14);
    expect(scan("VA 3 f1\r\nab", ReplyKind.MetaGet)).toBe(-1);
    expect(scan("MN\r\nHD\r\n", ReplyKind.QuietMetaGet)).toBe(4);
    expect(scan("VA 1\r\nx\r\nMN\r\n", ReplyKind.QuietMetaArithmetic)).toBe(13);
    expect(replyBodyEnd(ReplyKind.QuietMetaArithmetic, 13)).toBe(9);
    expect(scan("VA 1\r\nx\r\nM", ReplyKind.QuietMetaGet)).toBe(-1);
    expect(scan("SERVER_ERROR out of memory\r\nMN\r\n", ReplyKind.QuietMetaSet)).toBe(32);
    expect(scan("ME k exp=-1 la=0 cas=1 fetch=no cls=1 size=64\r\n", ReplyKind.MetaDebug)).toBe(47);
  });

  test("a code the request cannot get, or a quiet reply without its MN, is a protocol error", () => {
    expect(() => scan("VA 1\r\nx\r\n", ReplyKind.MetaSet)).toThrow(ProtocolError);
    expect(() => scan("EN\r\n", ReplyKind.MetaDelete)).toThrow(ProtocolError);
    expect(() => scan("HDX\r\n", ReplyKind.MetaGet)).toThrow(ProtocolError);
    expect(() => scan("VA 1\r\nxyz\r\n", ReplyKind.MetaGet)).toThrow(ProtocolError);
    expect(() => scan("HD\r\nHD\r\n", ReplyKind.QuietMetaSet)).toThrow(ProtocolError);
    expect(() => scan("STORED\r\n", ReplyKind.MetaSet)).toThrow(ProtocolError);
  });
});

describe("meta commands to an owner that is down", () => {
  test("are answered unavailable in order, a quiet one too", async () => {
    const [remote] = keysOf(1, "gone", 1);
    const [local] = keysOf(0, "gone", 1);
    procs[1].kill();
    await procs[1].exited;
    const c = await RawClient.connect(ports[0]);
    const unavailable = `SERVER_ERROR peer 127.0.0.1:${ports[1]} unavailable\r\n`;
    const reply = await c.request(`ms ${local} 1\r\nx\r\nmg ${remote} v q\r\nmg ${local} v\r\nmn\r\n`, "MN\r\n");
    expect(reply).toBe(`HD\r\n${unavailable}VA 1\r\nx\r\nMN\r\n`);
    c.close();
  });
});

interface MetaRequest {
  text: string;
  /** null for mn. */
  key: string | null;
}

/**
 * Seeded meta requests (and a few classic ones) whose replies do not depend on CAS values or
 * time, so that two runs from an empty cache answer the same bytes.
 */
function metaPipeline(seed: number, keys: readonly string[], n: number): MetaRequest[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const maybe = (flag: string, p = 0.3): string => (r() < p ? ` ${flag}` : "");
  const out: MetaRequest[] = [];
  for (let i = 0; i < n; i++) {
    const key = pick(keys);
    const q = maybe("q", 0.4);
    const opaque = maybe(`O${i}`);
    const x = r();
    if (x < 0.3) out.push({ key, text: `mg ${key}${maybe("v", 0.7)}${maybe("f")}${maybe("s")}${maybe("k")}${q}${opaque}\r\n` });
    else if (x < 0.55) {
      const value = pick(["a", "bb", "", "12", "x".repeat(2000)]);
      const mode = maybe(`M${pick(["S", "E", "A", "P", "R"])}`);
      out.push({ key, text: `ms ${key} ${value.length}${maybe(`F${i}`)}${mode}${q}${opaque}${maybe("k")}\r\n${value}\r\n` });
    } else if (x < 0.65) out.push({ key, text: `md ${key}${q}${opaque}${maybe("x", 0.2)}\r\n` });
    else if (x < 0.8) out.push({ key, text: `ma ${key}${maybe("N0 J5", 0.5)}${maybe("MD")}${maybe("v", 0.6)}${q}${opaque}\r\n` });
    else if (x < 0.87) out.push({ key: null, text: "mn\r\n" });
    else if (x < 0.94) out.push({ key, text: `get ${key}\r\n` });
    else out.push({ key, text: `set ${key} 1 0 2\r\n${i % 10}${i % 7}\r\n` });
  }
  return out;
}
