/**
 * Misbehaving clients against a spawned server: too many connections (-c), a client that
 * pipelines large replies and never reads (--max-conn-buffer backpressure, measured as the
 * server's resident memory), and silent connections (--idle-timeout).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ascii, concat } from "../bench/robustness/bytes.ts";
import { Conversation } from "../bench/robustness/conversation.ts";
import { rssBytes } from "../bench/robustness/process.ts";
import { RawStream } from "../bench/robustness/raw-stream.ts";
import { Rng } from "../bench/robustness/rng.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

const MB = 1024 * 1024;
const WAIT_MS = 2000;

/** Connects and checks the connection serves (`version`); returns it open. */
async function serving(port: number): Promise<Conversation> {
  const conv = await Conversation.open(port);
  conv.send("version\r\n");
  expect(await conv.until((t) => t.endsWith("\r\n"), WAIT_MS)).toStartWith("VERSION ");
  return conv;
}

/** Polls `stats` until curr_connections (the polling connection included) is `n`; bounded by WAIT_MS. */
async function waitForConnections(port: number, n: number): Promise<void> {
  const deadline: number = Date.now() + WAIT_MS;
  for (;;) {
    const conv = await Conversation.open(port);
    conv.send("stats\r\n");
    const stats: string = await conv.until((t) => t.endsWith("END\r\n"), WAIT_MS);
    conv.close();
    const current = Number(/STAT curr_connections (\d+)/.exec(stats)?.[1]);
    if (current === n) return;
    if (Date.now() > deadline) throw new Error(`curr_connections stayed ${current}, wanted ${n}`);
    await Bun.sleep(20);
  }
}

describe("-c 5: the connection limit", () => {
  let server: SpawnedServer;
  const open: Conversation[] = [];
  beforeAll(async () => {
    server = await spawnCacheismo(["-c", "5"]);
  });
  afterAll(async () => {
    for (const conv of open) conv.close();
    await server.kill();
  });

  test("the 6th connection gets ERROR Too many open connections and is closed; after one closes a new one works", async () => {
    await waitForConnections(server.port, 1); // the startup probe is gone
    for (let i = 0; i < 5; i++) open.push(await serving(server.port));
    const sixth = await Conversation.open(server.port);
    expect(await sixth.closedBy(WAIT_MS)).toBe("ERROR Too many open connections\r\n");
    expect(sixth.closed).toBe(true);
    for (const conv of open) {
      conv.send("version\r\n");
      expect(await conv.until((t) => t.endsWith("\r\n"), WAIT_MS)).toStartWith("VERSION ");
    }
    open.shift()!.close();
    const deadline: number = Date.now() + WAIT_MS;
    let replacement: Conversation | undefined;
    while (replacement === undefined && Date.now() < deadline) {
      const conv = await Conversation.open(server.port);
      conv.send("version\r\n");
      const reply: string = await conv.until((t) => t.endsWith("\r\n"), WAIT_MS);
      if (reply.startsWith("VERSION ")) replacement = conv;
      else conv.close(); // the server had not seen the close yet
    }
    expect(replacement).toBeDefined();
    open.push(replacement!);
  });
});

describe("--max-conn-buffer 1m: output backpressure", () => {
  const VALUE_BYTES = 500 * 1024;
  const GETS = 2000; // 1 GB of replies if the server buffered them all
  const BUFFER_LIMIT = 1 * MB;
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnCacheismo(["--max-conn-buffer", "1m", "-m", "16"]);
  });
  afterAll(async () => {
    await server.kill();
  });

  test("a client that pipelines 2,000 gets of a 500 KB value and does not read keeps server memory bounded, then gets every reply intact", async () => {
    const value: Uint8Array = new Rng(7).bytes(VALUE_BYTES);
    const setter = await Conversation.open(server.port);
    setter.send(concat([ascii(`set big 3 0 ${VALUE_BYTES}\r\n`), value, ascii("\r\n")]));
    expect(await setter.until((t) => t.endsWith("\r\n"), WAIT_MS)).toBe("STORED\r\n");
    setter.close();

    const unit: Buffer = Buffer.from(concat([ascii(`VALUE big 3 ${VALUE_BYTES}\r\n`), value, ascii("\r\nEND\r\n")]));
    const total: number = unit.length * GETS;
    let received = 0;
    let firstMismatch: number | undefined;
    const reader = await RawStream.connect(server.port, {
      data(chunk) {
        // The reply stream must be `unit` repeated; compare chunk by chunk against it.
        for (let at = 0; at < chunk.length && firstMismatch === undefined; ) {
          const offset: number = (received + at) % unit.length;
          const n: number = Math.min(unit.length - offset, chunk.length - at);
          if (Buffer.compare(chunk.subarray(at, at + n), unit.subarray(offset, offset + n)) !== 0) firstMismatch = received + at;
          at += n;
        }
        received += chunk.length;
      },
      close() {},
    });
    reader.pause();
    const before: number = rssBytes(server.proc.pid);
    reader.write(ascii("get big\r\n".repeat(GETS)));
    let peak: number = before;
    for (let i = 0; i < 15; i++) {
      await Bun.sleep(100);
      peak = Math.max(peak, rssBytes(server.proc.pid));
    }
    expect(received).toBeLessThan(total); // it really did not read everything yet
    expect((peak - before) / MB).toBeLessThan((BUFFER_LIMIT + VALUE_BYTES) / MB + 16);

    reader.resume();
    const deadline: number = Date.now() + 20_000;
    while (received < total && !reader.closed && firstMismatch === undefined && Date.now() < deadline) await Bun.sleep(20);
    expect({ received, firstMismatch }).toEqual({ received: total, firstMismatch: undefined });
    reader.end();
    await serving(server.port).then((conv) => conv.close());
  });
});

describe("--idle-timeout 1", () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnCacheismo(["--idle-timeout", "1"]);
  });
  afterAll(async () => {
    await server.kill();
  });

  test("a silent connection is closed within 2.5 s", async () => {
    const silent = await Conversation.open(server.port);
    const opened: number = Date.now();
    await silent.closedBy(6000);
    const closedAfterMs: number = Date.now() - opened;
    expect(silent.closed).toBe(true);
    expect(closedAfterMs).toBeLessThan(2500);
  }, 15_000);

  test("a connection that sends a request every 250 ms stays open past the timeout", async () => {
    const active = await serving(server.port);
    const until: number = Date.now() + 4500; // past the 1 s timeout and any 4 s timer granularity
    while (Date.now() < until) {
      await Bun.sleep(250);
      active.send("version\r\n");
      expect(await active.until((t) => t.endsWith("\r\n"), WAIT_MS)).toStartWith("VERSION ");
    }
    expect(active.closed).toBe(false);
    active.close();
  }, 15_000);
});
