/**
 * --auto-eject: a dead peer leaves the continuum and its keys are served by the next owner; after
 * --server-retry-timeout it is probed, and rejoins as soon as it answers.
 */
import { expect, test } from "bun:test";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { type InProcessServer, startServer } from "../src/index.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { freePort } from "./helpers/spawn.ts";

test("an ejected peer's keys go to the next owner, and it rejoins after --server-retry-timeout once it answers", async () => {
  const ports = [freePort(), freePort()];
  const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
  const RETRY_MS = 300;
  const node = (i: number): Promise<InProcessServer> =>
    startServer({ port: ports[i], memoryLimitMb: 8, cluster: true, peers, self: `127.0.0.1:${ports[i]}`, peerTimeoutMs: 300, autoEject: true, serverFailureLimit: 1, serverRetryTimeoutMs: RETRY_MS });
  const a = await node(0);
  let b = await node(1);
  const continuum = new Continuum(parseServerList(peers), "md5");
  let key = "";
  for (let i = 0; ; i++) if (continuum.ownerIndex(new TextEncoder().encode((key = `ej${i}`))) === 1) break;
  const label = `127.0.0.1:${ports[1]}`;
  const c = await RawClient.connect(ports[0]);
  expect(await c.request(`set ${key} 0 0 1\r\nb\r\n`)).toBe("STORED\r\n");
  await b.stop();
  // In flight when B goes: answered unavailable; B is ejected at this first failure.
  expect(await c.request(`get ${key}\r\n`)).toBe(`SERVER_ERROR peer ${label} unavailable\r\n`);
  const ejectedAt = Date.now();
  expect(await c.request("stats\r\n", "END\r\n")).toContain(`STAT peer:${label}:state ejected\r\n`);
  // Later requests go to the new owner: this node.
  expect(await c.request(`set ${key} 0 0 1\r\na\r\nget ${key}\r\n`, "END\r\n")).toBe(`STORED\r\nVALUE ${key} 0 1\r\na\r\nEND\r\n`);
  b = await node(1);
  const writer = await RawClient.connect(ports[1]);
  expect(await writer.request(`set ${key} 0 0 1\r\nB\r\n`)).toBe("STORED\r\n");
  writer.close();
  let reply = "";
  const until = Date.now() + 5000;
  while (Date.now() < until && !reply.startsWith(`VALUE ${key} 0 1\r\nB`)) {
    reply = await c.request(`get ${key}\r\n`, "END\r\n");
    await Bun.sleep(20);
  }
  expect(reply).toBe(`VALUE ${key} 0 1\r\nB\r\nEND\r\n`);
  expect(Date.now() - ejectedAt).toBeGreaterThanOrEqual(RETRY_MS);
  const stats = await c.request("stats\r\n", "END\r\n");
  expect(stats).toContain(`STAT peer:${label}:state up\r\n`);
  expect(stats).toContain(`STAT peer:${label}:ejections 1\r\n`);
  c.close();
  await a.stop();
  await b.stop();
}, 20_000);
