/**
 * Faults of real nodes behind server-side routing: an owner frozen (SIGSTOP/SIGCONT), killed
 * mid-pipeline and restarted, a slow request on a healthy owner, a multiget touching a dead owner.
 * Every reply is checked, and so is the time routing takes to recover.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { ROOT, freePort, serverCommand, waitForPort } from "./helpers/spawn.ts";

const TIMEOUT_MS = 400;
const ports = [freePort(), freePort(), freePort()];
const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
const continuum = new Continuum(parseServerList(peers), "md5");
const procs: (ReturnType<typeof Bun.spawn> | null)[] = [null, null, null];
const scriptsDir = mkdtempSync(join(tmpdir(), "cacheismo-faults-"));
// Answers nothing: a script waiting on it waits out its whole budget.
const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
const [A, B, C] = [0, 1, 2];

async function startNode(i: number): Promise<number> {
  const args = ["-p", String(ports[i]), "-m", "16", "--cluster", "--peers", peers, "--self", `127.0.0.1:${ports[i]}`, "--peer-timeout-ms", String(TIMEOUT_MS)];
  args.push("-e", "-d", scriptsDir);
  procs[i] = Bun.spawn([...serverCommand(), ...args], { cwd: ROOT, stdout: "ignore", stderr: "ignore" });
  await waitForPort(ports[i]);
  return Date.now();
}

const enc = new TextEncoder();
const owner = (key: string): number => continuum.ownerIndex(enc.encode(key));
function keysOn(node: number, prefix: string, n: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < n; i++) if (owner(`${prefix}${i}`) === node) keys.push(`${prefix}${i}`);
  return keys;
}
const unavailable = (node: number): string => `SERVER_ERROR peer 127.0.0.1:${ports[node]} unavailable\r\n`;
const value = (key: string): string => `VALUE ${key} 0 ${key.length}\r\n${key}\r\nEND\r\n`;
const replyCount = (t: string): number => t.split("END\r\n").length - 1 + (t.match(/^SERVER_ERROR.*\r\n/gm)?.length ?? 0);

/** Splits a stream of single-key get replies into replies. */
function splitReplies(text: string): string[] {
  return text.match(/VALUE [^\r]*\r\n[^\r]*\r\nEND\r\n|END\r\n|SERVER_ERROR[^\r]*\r\n/g) ?? [];
}

async function storeAll(keys: string[]): Promise<void> {
  const c = await RawClient.connect(ports[A]);
  const sets = keys.map((k) => `set ${k} 0 0 ${k.length}\r\n${k}\r\n`).join("");
  expect(await c.request(sets, (t) => t.split("STORED\r\n").length > keys.length)).toBe("STORED\r\n".repeat(keys.length));
  c.close();
}

/** Sends `get key` every 20 ms until it is answered with its value; returns when that was. */
async function firstSuccess(c: RawClient, key: string, deadlineMs: number): Promise<number> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const reply = await c.request(`get ${key}\r\n`, (t) => replyCount(t) === 1);
    if (reply === value(key)) return Date.now();
    await Bun.sleep(20);
  }
  throw new Error(`${key} not answered within ${deadlineMs} ms`);
}

beforeAll(async () => {
  writeFileSync(join(scriptsDir, "slow.lua"), `slow = {}\nfunction slow.get(cmd, key, k) return cmd:getFromServer("127.0.0.1:${silent.port}", k) or "nil" end\n`);
  await Promise.all([A, B, C].map(startNode));
});
afterAll(async () => {
  for (const p of procs) p?.kill();
  await Promise.all(procs.map((p) => p?.exited));
  silent.stop(true);
  rmSync(scriptsDir, { recursive: true, force: true });
});

describe("cluster faults", () => {
  test("a frozen owner: its requests in flight fail in order within the timeout, others are answered, the connection stays usable, and traffic recovers within 2 × --peer-timeout-ms of SIGCONT", async () => {
    const onC = keysOn(C, "fz", 20);
    const onB = keysOn(B, "fz", 20);
    const onA = keysOn(A, "fz", 20);
    await storeAll([...onA, ...onB, ...onC]);
    const c = await RawClient.connect(ports[A]);
    procs[C]!.kill("SIGSTOP");
    try {
      const order = onC.flatMap((k, i) => [k, onB[i], onA[i]]);
      const t0 = Date.now();
      const text = await c.request(order.map((k) => `get ${k}\r\n`).join(""), (t) => replyCount(t) === order.length);
      const elapsed = Date.now() - t0;
      expect(splitReplies(text)).toEqual(order.map((k) => (owner(k) === C ? unavailable(C) : value(k))));
      expect(elapsed).toBeLessThan(TIMEOUT_MS + 2000);
      expect(await c.request(`get ${onB[0]}\r\n`, "END\r\n")).toBe(value(onB[0]));
      // Frozen for a while longer, with traffic: it is down, and failing fast.
      const frozenUntil = Date.now() + 3000;
      while (Date.now() < frozenUntil) {
        expect(await c.request(`get ${onC[0]}\r\n`)).toBe(unavailable(C));
        await Bun.sleep(50);
      }
      expect(await c.request("stats\r\n", "END\r\n")).toContain(`STAT peer:127.0.0.1:${ports[C]}:state down\r\n`);
    } finally {
      procs[C]!.kill("SIGCONT");
    }
    const resumed = Date.now();
    const recovered = await firstSuccess(c, onC[0], 10_000);
    expect(recovered - resumed).toBeLessThan(2 * TIMEOUT_MS + 300);
    c.close();
  }, 30_000);

  test("a slow request on a healthy owner fails no other request and does not take the owner down", async () => {
    const onB = keysOn(B, "sl", 20);
    await storeAll(onB);
    // A virtual key whose object lives on B, whose script waits on a silent server as long as it may.
    const slowKey = `slow:get:${keysOn(B, "x", 1)[0]}`;
    const slowClient = await RawClient.connect(ports[A]);
    const plain = await RawClient.connect(ports[A]);
    const slowCalls = (async () => {
      for (let i = 0; i < 6; i++) expect(await slowClient.request(`get ${slowKey}\r\n`, (t) => replyCount(t) === 1)).toBe(`VALUE ${slowKey} 0 3\r\nnil\r\nEND\r\n`);
    })();
    let gets = 0;
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      const key = onB[gets++ % onB.length];
      expect(await plain.request(`get ${key}\r\n`, (t) => replyCount(t) === 1)).toBe(value(key));
    }
    await slowCalls;
    const stats = await plain.request("stats\r\n", "END\r\n");
    expect(stats).toContain(`STAT peer:127.0.0.1:${ports[B]}:state up\r\n`);
    expect(stats).toContain(`STAT peer:127.0.0.1:${ports[B]}:errors 0\r\n`);
    slowClient.close();
    plain.close();
  }, 30_000);

  test("an owner killed mid-pipeline: every request is answered once, in order, the connection stays usable; a multiget answers the live keys and counts the dead owner's as misses; routing recovers within 2 × --peer-timeout-ms of the restart", async () => {
    const onC = keysOn(C, "kl", 100);
    const onB = keysOn(B, "kl", 100);
    await storeAll([...onB, ...onC]);
    const c = await RawClient.connect(ports[A]);
    const order = onC.flatMap((k, i) => [k, onB[i]]);
    c.send(order.map((k) => `get ${k}\r\n`).join(""));
    procs[C]!.kill("SIGKILL");
    await procs[C]!.exited;
    const replies = splitReplies(await c.readUntil((t) => replyCount(t) >= order.length, 10_000));
    expect(replies.length).toBe(order.length);
    replies.forEach((reply, i) => {
      if (owner(order[i]) === C) expect([value(order[i]), unavailable(C)]).toContain(reply);
      else expect(reply).toBe(value(order[i]));
    });
    // A multiget over B and dead C: B's values in key order, C's keys missing, counted.
    const mixed = [onB[0], onC[0], onB[1], onC[1], onC[2]];
    for (let i = 0; i < 3; i++) await c.request(`get ${onC[0]}\r\n`); // until C is down
    const before = Number(/cluster_dead_owner_misses (\d+)/.exec(await c.request("stats\r\n", "END\r\n"))![1]);
    expect(await c.request(`get ${mixed.join(" ")}\r\n`, "END\r\n")).toBe(`VALUE ${onB[0]} 0 ${onB[0].length}\r\n${onB[0]}\r\nVALUE ${onB[1]} 0 ${onB[1].length}\r\n${onB[1]}\r\nEND\r\n`);
    expect(await c.request(`get ${onC[0]} ${onC[1]}\r\n`, "END\r\n")).toBe("END\r\n");
    const after = Number(/cluster_dead_owner_misses (\d+)/.exec(await c.request("stats\r\n", "END\r\n"))![1]);
    expect(after - before).toBe(5);
    expect(await c.request(`get ${onC[0]}\r\n`)).toBe(unavailable(C));
    const listening = await startNode(C);
    const cKey = keysOn(C, "rs", 1)[0];
    const writer = await RawClient.connect(ports[C]);
    expect(await writer.request(`set ${cKey} 0 0 ${cKey.length}\r\n${cKey}\r\n`)).toBe("STORED\r\n");
    writer.close();
    const recovered = await firstSuccess(c, cKey, 10_000);
    expect(recovered - listening).toBeLessThan(2 * TIMEOUT_MS + 300);
    c.close();
  }, 30_000);
});
