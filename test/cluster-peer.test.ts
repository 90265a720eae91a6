/**
 * PeerClient against a real memcached (Debian package `memcached` on PATH),
 * plus fake peers that stay silent, hang up or talk nonsense.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess, TCPSocketListener } from "bun";
import { countReplies, ReplyScanner } from "../src/cluster/framing.ts";
import { PeerClient, PeerError, type PeerErrorKind } from "../src/cluster/peer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const enc = (s: string): Uint8Array => encoder.encode(s);
const WAIT_MS = 5_000;

const procs: Subprocess[] = [];
const listeners: TCPSocketListener<undefined>[] = [];
const clients: PeerClient[] = [];

function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

async function startMemcached(port: number): Promise<Subprocess> {
  if (Bun.which("memcached") === null) throw new Error("memcached not found: apt-get install -y memcached");
  const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : [];
  const proc = Bun.spawn(["memcached", "-l", "127.0.0.1", "-p", String(port), "-U", "0", "-m", "64", ...asRoot], {
    stdout: "ignore",
    stderr: "ignore",
  });
  procs.push(proc);
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`memcached exited with ${proc.exitCode}`);
    try {
      (await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })).end();
      return proc;
    } catch {
      await Bun.sleep(20);
    }
  }
  throw new Error(`memcached did not listen on ${port} within ${WAIT_MS} ms`);
}

function client(port: number, timeoutMs: number, connections = 1): PeerClient {
  const c = new PeerClient("127.0.0.1", port, timeoutMs, { connections, minBackoffMs: 50, maxBackoffMs: 400 });
  clients.push(c);
  return c;
}

async function ask(c: PeerClient, request: string): Promise<string> {
  return decoder.decode(await c.request(enc(request)));
}

async function failureOf(p: Promise<Uint8Array>): Promise<PeerErrorKind> {
  try {
    await p;
  } catch (err) {
    if (err instanceof PeerError) return err.kind;
    throw err;
  }
  throw new Error("request unexpectedly succeeded");
}

/** A fake peer that hands every received chunk to `onData`. */
function fakePeer(onData: (socket: { write(s: string): number; end(): void }) => void): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (socket) => onData(socket) } });
  listeners.push(server);
  return server.port;
}

let memcachedPort = 0;

beforeAll(async () => {
  memcachedPort = freePort();
  await startMemcached(memcachedPort);
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const l of listeners) l.stop(true);
  for (const p of procs) p.kill("SIGKILL");
  await Promise.race([Promise.all(procs.map((p) => p.exited)), Bun.sleep(WAIT_MS)]);
});

describe("PeerClient against memcached", () => {
  test("10,000 pipelined set/get requests resolve in order with the right replies", async () => {
    const c = client(memcachedPort, 2_000);
    const n = 5_000;
    const replies: Promise<Uint8Array>[] = [];
    for (let i = 0; i < n; i++) {
      const value = `v${i}`;
      replies.push(c.request(enc(`set pipe:${i} ${i} 0 ${value.length}\r\n${value}\r\n`)));
      replies.push(c.request(enc(`get pipe:${i}\r\n`)));
    }
    const got = (await Promise.all(replies)).map((r) => decoder.decode(r));
    for (let i = 0; i < n; i++) {
      expect(got[2 * i]).toBe("STORED\r\n");
      expect(got[2 * i + 1]).toBe(`VALUE pipe:${i} ${i} ${`v${i}`.length}\r\nv${i}\r\nEND\r\n`);
    }
  });

  test("frames every reply shape: multi-line, data blocks that look like terminators, meta, errors", async () => {
    const c = client(memcachedPort, 2_000);
    const tricky = "a\r\nEND\r\nVALUE x 0 1\r\nSTORED\r\n";
    const big = "x".repeat(700_000); // spans many TCP reads
    expect(await ask(c, `set tricky 0 0 ${tricky.length}\r\n${tricky}\r\n`)).toBe("STORED\r\n");
    expect(await ask(c, `set big 0 0 ${big.length}\r\n${big}\r\n`)).toBe("STORED\r\n");
    expect(await ask(c, "set n 0 0 1\r\n5\r\n")).toBe("STORED\r\n");

    expect(await ask(c, "get tricky missing n\r\n")).toBe(`VALUE tricky 0 ${tricky.length}\r\n${tricky}\r\nVALUE n 0 1\r\n5\r\nEND\r\n`);
    expect(await ask(c, "get big\r\n")).toBe(`VALUE big 0 ${big.length}\r\n${big}\r\nEND\r\n`);
    expect(await ask(c, "get missing\r\n")).toBe("END\r\n");
    expect(await ask(c, "incr n 3\r\n")).toBe("8\r\n");
    expect(await ask(c, "touch n 100\r\n")).toBe("TOUCHED\r\n");
    expect(await ask(c, "delete missing\r\n")).toBe("NOT_FOUND\r\n");
    expect(await ask(c, "version\r\n")).toMatch(/^VERSION \S+\r\n$/);
    const stats = await ask(c, "stats\r\n");
    expect(stats.startsWith("STAT pid ")).toBe(true);
    expect(stats.endsWith("\r\nEND\r\n")).toBe(true);
    expect(await ask(c, "mg n v\r\n")).toBe("VA 1\r\n8\r\n");
    expect(await ask(c, "mg missing v\r\n")).toBe("EN\r\n");
    expect(await ask(c, "ms m 2\r\nhi\r\n")).toBe("HD\r\n");
    expect(await ask(c, "mn\r\n")).toBe("MN\r\n");
    expect(await ask(c, "bogus\r\n")).toBe("ERROR\r\n");
    expect(await ask(c, "incr tricky 1\r\n")).toMatch(/^CLIENT_ERROR /);
    // the connection is still in step after all of the above
    expect(await ask(c, "get n\r\n")).toBe("VALUE n 0 1\r\n8\r\nEND\r\n");
  });

  test("several commands in one request resolve together with all their replies", async () => {
    const c = client(memcachedPort, 2_000);
    expect(await ask(c, "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a b\r\ndelete a\r\n")).toBe(
      "STORED\r\nSTORED\r\nVALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nEND\r\nDELETED\r\n",
    );
  });

  test("with 4 connections, 2,000 concurrent gets all get their own value", async () => {
    const c = client(memcachedPort, 2_000, 4);
    await Promise.all(Array.from({ length: 2_000 }, (_, i) => c.request(enc(`set pool:${i} 0 0 ${String(i).length}\r\n${i}\r\n`))));
    const got = await Promise.all(Array.from({ length: 2_000 }, (_, i) => ask(c, `get pool:${i}\r\n`)));
    got.forEach((r, i) => expect(r).toBe(`VALUE pool:${i} 0 ${String(i).length}\r\n${i}\r\nEND\r\n`));
  });

  test("noreply, meta quiet mode and truncated requests are refused without being sent", async () => {
    const c = client(memcachedPort, 2_000);
    expect(await failureOf(c.request(enc("set k 0 0 1 noreply\r\nx\r\n")))).toBe("protocol");
    expect(await failureOf(c.request(enc("delete k noreply\r\n")))).toBe("protocol");
    expect(await failureOf(c.request(enc("mg k v q\r\n")))).toBe("protocol");
    expect(await failureOf(c.request(enc("set k 0 0 5\r\nab\r\n")))).toBe("protocol");
    expect(await failureOf(c.request(enc("get k")))).toBe("protocol");
    expect(await ask(c, "delete noreply\r\n")).toBe("NOT_FOUND\r\n"); // "noreply" as a key is fine
  });
});

describe("PeerClient failure handling", () => {
  test("a refused connection rejects fast, fails fast while down, and reconnects after backoff", async () => {
    const port = freePort();
    const c = client(port, 1_000);
    const t0 = performance.now();
    expect(await failureOf(c.request(enc("version\r\n")))).toBe("down");
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(c.isDown).toBe(true);
    expect(await failureOf(c.request(enc("version\r\n")))).toBe("down"); // no connect attempt

    await startMemcached(port);
    const deadline = Date.now() + WAIT_MS;
    let reply = "";
    while (reply === "" && Date.now() < deadline) {
      reply = await ask(c, "version\r\n").catch(() => "");
      if (reply === "") await Bun.sleep(25);
    }
    expect(reply).toMatch(/^VERSION /);
    expect(c.isDown).toBe(false);
  });

  test("a silent peer makes every in-flight request reject with a timeout within timeoutMs", async () => {
    const port = fakePeer(() => {});
    const c = client(port, 200);
    const t0 = performance.now();
    const kinds = await Promise.all([1, 2, 3].map((i) => failureOf(c.request(enc(`get k${i}\r\n`)))));
    const elapsed = performance.now() - t0;
    expect(kinds).toEqual(["timeout", "timeout", "timeout"]);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(600); // timer slack on a loaded machine
    expect(c.isDown).toBe(true);
  });

  test("a peer that hangs up mid-request rejects what was in flight as closed", async () => {
    const port = fakePeer((socket) => socket.end());
    const c = client(port, 2_000);
    expect(await failureOf(c.request(enc("get k\r\n")))).toBe("closed");
  });

  test("an idle connection the peer closes is replaced without marking the peer down", async () => {
    const port = fakePeer((socket) => {
      socket.write("VERSION fake\r\n");
      socket.end();
    });
    const c = client(port, 2_000);
    expect(await ask(c, "version\r\n")).toBe("VERSION fake\r\n");
    await Bun.sleep(50); // let the close arrive while nothing is in flight
    expect(c.isDown).toBe(false);
    expect(await ask(c, "version\r\n")).toBe("VERSION fake\r\n");
  });

  test("an unparseable reply rejects as a protocol error", async () => {
    const port = fakePeer((socket) => void socket.write("VALUE k 0 nope\r\n"));
    const c = client(port, 2_000);
    expect(await failureOf(c.request(enc("get k\r\n")))).toBe("protocol");
  });
});

describe("framing", () => {
  test("countReplies counts commands and skips their data blocks", () => {
    expect(countReplies(enc("get a b c\r\n"))).toBe(1);
    expect(countReplies(enc("set a 0 0 5\r\nx\r\ny\r\nget a\r\ncas a 0 0 1 9\r\nz\r\nms b 3 T0\r\nabc\r\nmn\r\n"))).toBe(5);
  });

  test("ReplyScanner finds the same boundaries when fed one byte at a time", () => {
    const stream = enc(
      "VALUE k 1 7\r\nEND\r\n\r\n\r\nEND\r\nSTAT a 1\r\nSTAT b 2\r\nEND\r\nVA 3 f1\r\nEND\r\nSTORED\r\nSERVER_ERROR oops\r\n",
    );
    const whole = new ReplyScanner();
    const expected: number[] = [];
    for (let at = 0; at < stream.length; ) expected.push((at = whole.next(stream, at, stream.length)));
    expect(expected.length).toBe(5);

    const scanner = new ReplyScanner();
    const ends: number[] = [];
    let start = 0;
    for (let have = 1; have <= stream.length; have++) {
      const end = scanner.next(stream, start, have);
      if (end !== -1) ends.push((start = end));
    }
    expect(ends).toEqual(expected);
  });
});
