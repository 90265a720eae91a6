/** Three real nodes with server-side routing: any node answers for any key; a dead owner fails fast. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { ROOT, freePort, serverCommand, waitForPort } from "./helpers/spawn.ts";

const ports = [freePort(), freePort(), freePort()];
const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
const procs: (ReturnType<typeof Bun.spawn> | null)[] = [null, null, null];
const continuum = new Continuum(parseServerList(peers), "md5");

async function startNode(i: number): Promise<void> {
  procs[i] = Bun.spawn([...serverCommand(), "-p", String(ports[i]), "-m", "16", "--cluster", "--peers", peers, "--self", `127.0.0.1:${ports[i]}`, "--peer-timeout-ms", "300"], {
    cwd: ROOT,
    stdout: "ignore",
    stderr: "ignore",
  });
  await waitForPort(ports[i]);
}

async function stopNode(i: number): Promise<void> {
  procs[i]?.kill();
  await procs[i]?.exited;
  procs[i] = null;
}

function statValue(stats: string, name: string): number {
  return Number(new RegExp(`STAT ${name} (\\d+)`).exec(stats)![1]);
}

beforeAll(async () => {
  await Promise.all([0, 1, 2].map(startNode));
});
afterAll(async () => {
  await Promise.all([0, 1, 2].map(stopNode));
});

describe("cluster routing", () => {
  test("keys written through one node are readable through every node and live on their ketama owner only", async () => {
    const clients = await Promise.all(ports.map((p) => RawClient.connect(p)));
    const n = 300;
    let batch = "";
    for (let i = 0; i < n; i++) batch += `set ck${i} ${i} 0 ${String(i).length}\r\n${i}\r\n`;
    const stored = await clients[0].request(batch, (t) => t.split("STORED\r\n").length - 1 >= n);
    expect(stored).toBe("STORED\r\n".repeat(n));
    for (const c of clients) {
      for (let i = 0; i < n; i += 37) {
        expect(await c.request(`get ck${i}\r\n`, "END\r\n")).toBe(`VALUE ck${i} ${i} ${String(i).length}\r\n${i}\r\nEND\r\n`);
      }
    }
    // A multiget spanning all owners comes back merged in the client's key order.
    const keys = Array.from({ length: 40 }, (_, i) => `ck${i}`);
    const expected = keys.map((k, i) => `VALUE ${k} ${i} ${String(i).length}\r\n${i}\r\n`).join("") + "END\r\n";
    expect(await clients[1].request(`get ${keys.join(" ")} nosuchkey\r\n`, "END\r\n")).toBe(expected);
    // Each node holds exactly the keys the continuum gives it.
    const owned = [0, 0, 0];
    for (let i = 0; i < n; i++) owned[continuum.ownerIndex(new TextEncoder().encode(`ck${i}`))]++;
    for (let node = 0; node < 3; node++) {
      const stats = await clients[node].request("stats\r\n", "END\r\n");
      expect(statValue(stats, "curr_items")).toBe(owned[node]);
    }
    expect(owned.every((c) => c > 0)).toBe(true);
    // delete, incr and noreply are forwarded too.
    expect(await clients[2].request("delete ck1\r\n")).toBe("DELETED\r\n");
    expect(await clients[0].request("get ck1\r\n")).toBe("END\r\n");
    expect(await clients[2].request("incr ck5 10\r\n")).toBe("15\r\n");
    expect(await clients[1].request("set nr 0 0 1 noreply\r\nz\r\nget nr\r\n", "END\r\n")).toBe("VALUE nr 0 1\r\nz\r\nEND\r\n");
    for (const c of clients) c.close();
  });

  test("keys with bytes 0x80-0xff reach their owner byte for byte in a multiget split across nodes", async () => {
    const latin1 = (text: string): Uint8Array => Buffer.from(text, "latin1");
    const keys = Array.from({ length: 24 }, (_, i) => `hb\x80\x9f\xe9\xff${i}`);
    const owners = new Set(keys.map((k) => continuum.ownerIndex(latin1(k))));
    expect(owners.size).toBeGreaterThan(1);
    const c = await RawClient.connect(ports[0]);
    for (const [i, k] of keys.entries()) expect(await c.request(latin1(`set ${k} ${i} 0 1\r\n${i % 10}\r\n`))).toBe("STORED\r\n");
    const expected = keys.map((k, i) => `VALUE ${k} ${i} 1\r\n${i % 10}\r\n`).join("") + "END\r\n";
    expect(await c.request(latin1(`get ${keys.join(" ")}\r\n`), "END\r\n")).toBe(expected);
    c.close();
  });

  test("a dead owner makes its keys fail fast while other keys keep working, and routing recovers on restart", async () => {
    const victim = 2;
    const enc = new TextEncoder();
    const keyOn = (node: number): string => {
      for (let i = 0; ; i++) if (continuum.ownerIndex(enc.encode(`dk${i}`)) === node) return `dk${i}`;
    };
    const deadKey = keyOn(victim);
    const liveKey = keyOn(1);
    const c = await RawClient.connect(ports[0]);
    expect(await c.request(`set ${deadKey} 0 0 1\r\na\r\n`)).toBe("STORED\r\n");
    await stopNode(victim);
    // Refused twice (the default --server-failure-limit), the owner is down.
    const t0 = Date.now();
    for (let i = 0; i < 2; i++) expect(await c.request(`get ${deadKey}\r\n`)).toBe(`SERVER_ERROR peer 127.0.0.1:${ports[victim]} unavailable\r\n`);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await c.request(`set ${liveKey} 0 0 1\r\nb\r\n`)).toBe("STORED\r\n");
    expect(await c.request(`get ${liveKey}\r\n`, "END\r\n")).toBe(`VALUE ${liveKey} 0 1\r\nb\r\nEND\r\n`);
    const stats = await c.request("stats\r\n", "END\r\n");
    expect(stats).toContain(`STAT peer:127.0.0.1:${ports[victim]}:state down\r\n`);
    await startNode(victim);
    // A background probe brings the owner back as soon as it answers: wait for recovery, bounded.
    const deadline = Date.now() + 8000;
    let reply = "";
    while (Date.now() < deadline) {
      reply = await c.request(`set ${deadKey} 0 0 1\r\nc\r\n`);
      if (reply === "STORED\r\n") break;
      await Bun.sleep(200);
    }
    expect(reply).toBe("STORED\r\n");
    expect(await c.request(`get ${deadKey}\r\n`, "END\r\n")).toBe(`VALUE ${deadKey} 0 1\r\nc\r\nEND\r\n`);
    c.close();
  }, 20000);

  test("a client that shuts down its sending side right after its requests still gets every reply", async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `hc${i}`);
    const input = keys.map((k) => `set ${k} 0 0 2\r\nok\r\n`).join("") + `get ${keys.join(" ")}\r\n`;
    // nc -N sends FIN as soon as its input ends, before any reply (forwarded ones included) is back.
    const nc = Bun.spawn(["nc", "-N", "127.0.0.1", String(ports[1])], { stdin: new TextEncoder().encode(input), stdout: "pipe" });
    const timer = setTimeout(() => nc.kill(), 5000);
    const out = await new Response(nc.stdout).text();
    clearTimeout(timer);
    expect(out).toBe("STORED\r\n".repeat(keys.length) + keys.map((k) => `VALUE ${k} 0 2\r\nok\r\n`).join("") + "END\r\n");
  });
});
