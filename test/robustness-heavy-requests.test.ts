/**
 * Requests that cost the server far more than they cost the client, against a spawned server:
 * a pipeline of slow virtual keys (Lua time) must not hold other connections back, and one
 * multiget line naming a large value hundreds of times must not make the server buffer its whole
 * reply (memory, measured as the server's VmHWM).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ascii, concat } from "../bench/robustness/bytes.ts";
import { Conversation } from "../bench/robustness/conversation.ts";
import { RawStream } from "../bench/robustness/raw-stream.ts";
import { Rng } from "../bench/robustness/rng.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

const MiB = 1024 * 1024;
const WAIT_MS = 5000;

/** A "<field>: N kB" line of /proc/<pid>/status (VmRSS, VmHWM), in bytes. */
function statusBytes(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

describe("--script-timeout-ms 100: a pipeline of slow virtual keys", () => {
  const BUDGET_MS = 100;
  const CALLS = 40; // 4 s of Lua time in one write
  const scriptsDir = mkdtempSync(join(tmpdir(), "cacheismo-spin-"));
  let server: SpawnedServer;
  beforeAll(async () => {
    writeFileSync(join(scriptsDir, "spinner.lua"), "spinner = {}\nfunction spinner.spin(command, virtualKey)\n  while true do end\nend\n");
    server = await spawnCacheismo(["-e", "-d", scriptsDir, "--script-timeout-ms", String(BUDGET_MS)]);
  });
  afterAll(async () => {
    await server.kill();
    rmSync(scriptsDir, { recursive: true, force: true });
  });

  test("delays another client's request by a few call budgets, not the whole pipeline, and still answers every request in order", async () => {
    const a = await Conversation.open(server.port);
    a.send("set n 0 0 1\r\n0\r\n");
    expect(await a.until((t) => t.endsWith("\r\n"), WAIT_MS)).toBe("STORED\r\n");
    // Each slow call is followed by an incr, so the replies show their order.
    let expected = "";
    for (let i = 1; i <= CALLS; i++) expected += `SERVER_ERROR script timeout\r\n${i}\r\n`;
    let aReceived = "";
    const aDone = a.until((t) => {
      aReceived = t;
      return t.length >= expected.length;
    }, CALLS * BUDGET_MS * 20);
    a.send("get spinner:spin:x\r\nincr n 1\r\n".repeat(CALLS));
    await Bun.sleep(BUDGET_MS / 2); // the server has A's pipeline by now

    const b = await Conversation.open(server.port);
    const asked = performance.now();
    b.send("version\r\n");
    expect(await b.until((t) => t.endsWith("\r\n"), CALLS * BUDGET_MS * 20)).toStartWith("VERSION ");
    const waitedMs = performance.now() - asked;
    const aRepliesThen = aReceived.split("\r\n").length - 1;
    expect(aRepliesThen).toBeLessThan(2 * CALLS); // B did not wait for A's whole pipeline
    expect(waitedMs).toBeLessThan(20 * BUDGET_MS); // nor anywhere near its 4 s

    expect(await aDone).toBe(expected);
    a.close();
    b.close();
  }, 60_000);
});

/**
 * Compares a reply stream chunk by chunk against `unit` repeated `repeats` times then `tail`,
 * without holding the stream.
 */
class StreamCheck {
  received = 0;
  firstMismatch: number | undefined;
  readonly total: number;

  constructor(
    private readonly unit: Buffer,
    private readonly repeats: number,
    private readonly tail: Buffer,
  ) {
    this.total = unit.length * repeats + tail.length;
  }

  take(chunk: Uint8Array): void {
    const body = this.unit.length * this.repeats;
    for (let at = 0; at < chunk.length && this.firstMismatch === undefined; ) {
      const offset = this.received + at;
      const [source, from] = offset < body ? [this.unit, offset % this.unit.length] : [this.tail, offset - body];
      const n = Math.min(source.length - from, chunk.length - at);
      if (n <= 0 || Buffer.compare(chunk.subarray(at, at + n), source.subarray(from, from + n)) !== 0) this.firstMismatch = offset;
      at += Math.max(n, 1);
    }
    this.received += chunk.length;
  }
}

describe("-m 64 --max-conn-buffer 1m: one multiget line naming a large value hundreds of times", () => {
  const MEMORY_MB = 64;
  const BUFFER_MB = 1;
  /** What the server may hold beyond the arena: Bun, the Lua runtime of -e, and garbage between collections. */
  const HEADROOM_MB = 64;
  const SLACK_MB = 24;
  const PEAK_LIMIT_MB = MEMORY_MB + HEADROOM_MB + 2 * BUFFER_MB + SLACK_MB; // two connections at their bound
  const COPIES = 300;
  let server: SpawnedServer;
  // A server per test: VmHWM is the peak over the process's whole life. One thread: the bound is
  // per thread (each further -t thread carries a JavaScript heap and a Lua runtime of its own).
  beforeEach(async () => {
    server = await spawnCacheismo(["-m", String(MEMORY_MB), "--max-conn-buffer", `${BUFFER_MB}m`, "-e", "-t", "1"]);
  });
  afterEach(async () => {
    await server.kill();
  });

  /** A client that sends `request` and then reads its reply (checked by `check`) slowly; resolves when it all arrived. */
  async function readSlowly(request: string, check: StreamCheck): Promise<void> {
    const reader = await RawStream.connect(server.port, { data: (chunk) => check.take(chunk), close() {} });
    reader.pause();
    reader.write(ascii(request));
    await Bun.sleep(1000); // not reading at all for a while
    const deadline = Date.now() + 60_000;
    while (check.received < check.total && check.firstMismatch === undefined && !reader.closed && Date.now() < deadline) {
      reader.resume();
      await Bun.sleep(2);
      reader.pause();
      await Bun.sleep(5);
    }
    reader.end();
  }

  async function stillServes(): Promise<void> {
    const conv = await Conversation.open(server.port);
    conv.send("version\r\n");
    expect(await conv.until((t) => t.endsWith("\r\n"), WAIT_MS)).toStartWith("VERSION ");
    conv.close();
  }

  /**
   * Sends `request` (COPIES copies of `block`, then END) on a connection that never reads, then on
   * one that reads slowly: the server keeps serving, the slow reader gets every byte, and VmHWM
   * stays under the limit in both phases.
   */
  async function expectBoundedWhileSilentThenSlow(request: string, block: Buffer): Promise<void> {
    const silent = await RawStream.connect(server.port, { data() {}, close() {} });
    silent.pause();
    silent.write(ascii(request));
    await Bun.sleep(1500);
    await stillServes();
    const peakWhileSilent = statusBytes(server.proc.pid, "VmHWM");

    const check = new StreamCheck(block, COPIES, Buffer.from("END\r\n"));
    await readSlowly(request, check);
    const peak = statusBytes(server.proc.pid, "VmHWM");
    silent.end();
    expect({ received: check.received, firstMismatch: check.firstMismatch }).toEqual({ received: check.total, firstMismatch: undefined });
    expect(peakWhileSilent / MiB).toBeLessThan(PEAK_LIMIT_MB);
    expect(peak / MiB).toBeLessThan(PEAK_LIMIT_MB);
    await stillServes();
  }

  test("300 copies of a 1 MB value: a client that never reads does not grow the server, a slow reader gets every byte, memory stays within -m + 64 MiB + the buffer", async () => {
    const value = new Rng(11).bytes(1_000_000);
    const setter = await Conversation.open(server.port);
    setter.send(concat([ascii(`set big 5 0 ${value.length}\r\n`), value, ascii("\r\n")]));
    expect(await setter.until((t) => t.endsWith("\r\n"), WAIT_MS)).toBe("STORED\r\n");
    setter.close();
    const request = `get${" big".repeat(COPIES)}\r\n`;

    await expectBoundedWhileSilentThenSlow(request, Buffer.from(concat([ascii(`VALUE big 5 ${value.length}\r\n`), value, ascii("\r\n")])));
  }, 120_000);

  test("300 copies of an 800 KB map:getall: a client that never reads does not grow the server, a slow reader gets every byte, memory stays within -m + 64 MiB + the buffer", async () => {
    const setup = await Conversation.open(server.port);
    setup.send("get map:new:m\r\n");
    expect(await setup.until((t) => t.endsWith("END\r\n"), WAIT_MS)).toContain("CREATED");
    const ENTRIES = 3500;
    const filler = "v".repeat(230); // the longest value a 250-byte key carries
    let puts = "";
    for (let i = 0; i < ENTRIES; i++) puts += `get map:put:m:k${i}:${filler}\r\n`;
    setup.send(puts);
    expect(await setup.until((t) => t.split("END\r\n").length > ENTRIES, 60_000)).not.toContain("ERROR");
    setup.send("get map:getall:m\r\n");
    const one = Buffer.from(await setup.until((t) => t.endsWith("END\r\n"), WAIT_MS), "latin1");
    setup.close();
    expect(one.length).toBeGreaterThan(800_000);
    const block = one.subarray(0, one.length - "END\r\n".length);
    // Building the map is not what is measured: start the peak from here.
    writeFileSync(`/proc/${server.proc.pid}/clear_refs`, "5");
    const request = `get${" map:getall:m".repeat(COPIES)}\r\n`;

    await expectBoundedWhileSilentThenSlow(request, block);
  }, 120_000);
});
