/**
 * A multiget that stops midway (at --max-conn-buffer, or to let other connections go first after
 * its Lua time) and goes on later, driven the way the server drives a connection: send what is
 * sendable, resume when there is room, wait for onWake.
 */
import { describe, expect, test } from "bun:test";
import { type Config, defaultConfig } from "../src/config.ts";
import { type ProtocolContext, TextProtocol } from "../src/protocol/text.ts";
import { Counters, CounterTable } from "../src/stats.ts";
import { Store } from "../src/store/store.ts";

function protocolWith(config: Config, counters = new Counters(), virtualKey: ProtocolContext["virtualKey"] = null): TextProtocol {
  const store = new Store({ memoryBytes: 4 * 1024 * 1024, maxItemBytes: config.maxItemSizeBytes });
  return new TextProtocol({
    store,
    counters,
    config,
    stats: { config, store, counterTable: new CounterTable(counters.cells.buffer as SharedArrayBuffer), threads: 1, startedAt: store.clock.now, extraStats: [] },
    virtualKey,
    router: null,
    routingKey: null,
    auth: null,
    latency: null,
    flushAll: () => {},
    madeGarbage: () => {},
    shutdown: () => {},
  });
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");

/**
 * Feeds `input` and plays the server until nothing is left to do: takes at most `socketBytes` of
 * the sendable output per step, resumes held-back input when the output has room, waits for the
 * wake-up of a connection that let others go first. Returns what was sent and the largest output.
 */
async function converse(p: TextProtocol, limit: number, input: string, socketBytes = Number.MAX_SAFE_INTEGER): Promise<{ sent: string; peakOutput: number }> {
  let sent = "";
  let peakOutput = 0;
  let wake: () => void = () => {};
  p.onWake = () => wake();
  p.feed(Buffer.from(input, "latin1"));
  for (let step = 0; step < 100_000; step++) {
    peakOutput = Math.max(peakOutput, p.out.length);
    const n = Math.min(p.out.length - p.held, socketBytes);
    sent += latin1(p.out.bytes.subarray(0, n));
    p.out.consume(n);
    if (p.waiting) await new Promise<void>((resolve) => (wake = resolve));
    else if (p.blocked && p.out.length < limit) p.resume();
    else if (p.out.length === 0) return { sent, peakOutput };
  }
  throw new Error("the conversation did not end");
}

describe("a multiget stopped at --max-conn-buffer", () => {
  const config: Config = { ...defaultConfig(), maxConnBufferBytes: 64 * 1024, maxItemSizeBytes: 8192 };
  const VALUE_BYTES = 4000;
  const KEYS = 200; // far past the 24 tokens a line is split into: the walk goes on by scanning
  let setup = "";
  for (let i = 0; i < KEYS; i += 3) setup += `set k${i} ${i} 0 ${VALUE_BYTES}\r\n${String(i % 10).repeat(VALUE_BYTES)}\r\n`;
  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`).join("  ");
  const requests = `get ${keys}\r\ngets ${keys} \r\ngat 100 ${keys}\r\nversion\r\n`;

  test("sends byte for byte the reply it sends at once, the requests after it in order, and never buffers much past the bound", async () => {
    const unlimited = 1024 * 1024 * 1024;
    const unbounded = protocolWith({ ...config, maxConnBufferBytes: unlimited });
    await converse(unbounded, unlimited, setup);
    const atOnce = await converse(unbounded, unlimited, requests);
    expect(atOnce.peakOutput).toBeGreaterThan(4 * config.maxConnBufferBytes);

    const bounded = protocolWith(config);
    await converse(bounded, config.maxConnBufferBytes, setup);
    const drained = await converse(bounded, config.maxConnBufferBytes, requests, 1500);
    expect(drained.sent).toBe(atOnce.sent);
    expect(drained.sent.match(/END\r\n/g)?.length).toBe(3);
    expect(drained.peakOutput).toBeLessThan(config.maxConnBufferBytes + 2 * VALUE_BYTES);
  });
});

describe("a multiget stopped to let other connections go first", () => {
  const config: Config = { ...defaultConfig(), scriptTimeoutMs: 5 };
  /** Virtual keys: slow:* spends the whole Lua budget, bad:* fails, anything else is a plain key. */
  function virtualKey(key: string): Uint8Array | null {
    if (key.startsWith("slow:")) {
      const until = performance.now() + config.scriptTimeoutMs;
      while (performance.now() < until);
      return Buffer.from(`VALUE ${key} 0 2\r\nok\r\n`, "latin1");
    }
    if (key.startsWith("bad:")) return Buffer.from("SERVER_ERROR boom\r\n", "latin1");
    return null;
  }

  test("answers with the values of every key, in order, once", async () => {
    const counters = new Counters();
    const p = protocolWith(config, counters, virtualKey);
    const { sent } = await converse(p, config.maxConnBufferBytes, "get slow:1 slow:2 slow:3\r\nversion\r\n");
    expect(sent).toStartWith("VALUE slow:1 0 2\r\nok\r\nVALUE slow:2 0 2\r\nok\r\nVALUE slow:3 0 2\r\nok\r\nEND\r\nVERSION ");
    expect(counters.conn_yields).toBeGreaterThanOrEqual(2);
  });

  test("a virtual key failing after the turns still answers the whole request with its error line alone", async () => {
    const counters = new Counters();
    const p = protocolWith(config, counters, virtualKey);
    const { sent } = await converse(p, config.maxConnBufferBytes, "get slow:1 slow:2 bad:x slow:3\r\nversion\r\n");
    expect(counters.conn_yields).toBeGreaterThanOrEqual(2);
    expect(sent).toStartWith("SERVER_ERROR boom\r\nVERSION ");
  });
});
