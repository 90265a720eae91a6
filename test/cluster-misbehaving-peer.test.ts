/**
 * A peer that breaks the protocol is not trusted: a reply that does not answer its request, or a
 * reply with nothing asked, is a protocol error on that peer connection. It never reaches a
 * client and never becomes the answer to the next request; the requests waiting on that
 * connection are answered `SERVER_ERROR peer <host:port> unavailable`.
 */
import { afterEach, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { type InProcessServer, startServer } from "../src/index.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { freePort } from "./helpers/spawn.ts";

const running: { node: InProcessServer; fake: TCPSocketListener<undefined> }[] = [];
afterEach(async () => {
  for (const { node, fake } of running.splice(0)) {
    await node.stop();
    fake.stop(true);
  }
});

/** A node whose only peer is a fake answering each request line with `answer(line)`. */
async function clusterWithFake(answer: (line: string) => string): Promise<{ port: number; fakeLabel: string; keys: string[] }> {
  const fake = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket: Socket<undefined>, chunk) {
        for (const line of chunk.toString("latin1").split("\r\n").filter((l) => l !== "")) socket.write(answer(line));
      },
    },
  });
  const port = freePort();
  const peers = `127.0.0.1:${port},127.0.0.1:${fake.port}`;
  const node = await startServer({ port, memoryLimitMb: 8, cluster: true, peers, self: `127.0.0.1:${port}`, peerTimeoutMs: 1000 });
  running.push({ node, fake });
  const continuum = new Continuum(parseServerList(peers), "md5");
  const keys: string[] = [];
  for (let i = 0; keys.length < 40; i++) if (continuum.ownerIndex(new TextEncoder().encode(`mp${i}`)) === 1) keys.push(`mp${i}`);
  return { port, fakeLabel: `127.0.0.1:${fake.port}`, keys };
}

test("a peer reply that does not answer the request is never passed to the client", async () => {
  const { port, fakeLabel, keys } = await clusterWithFake(() => "HELLO WORLD\r\n");
  const c = await RawClient.connect(port);
  const unavailable = `SERVER_ERROR peer ${fakeLabel} unavailable\r\n`;
  expect(await c.request(`get ${keys[0]}\r\n`)).toBe(unavailable);
  expect(await c.request(`set ${keys[1]} 0 0 1\r\nx\r\n`)).toBe(unavailable);
  expect(await c.request(`delete ${keys[2]}\r\n`)).toBe(unavailable);
  expect(await c.request(`incr ${keys[3]} 1\r\n`)).toBe(unavailable);
  c.close();
});

test("a peer that answers every request twice never gets another request's reply to a client", async () => {
  const { port, fakeLabel, keys } = await clusterWithFake((line) => {
    const key = line.split(" ")[1];
    return `VALUE ${key} 0 ${key.length}\r\n${key}\r\nEND\r\n`.repeat(2);
  });
  const unavailable = `SERVER_ERROR peer ${fakeLabel} unavailable\r\n`;
  const c = await RawClient.connect(port);
  let errors = 0;
  // Pipelines of 4 gets of different keys: a duplicate reply lines up with the next request.
  for (let i = 0; i + 4 <= keys.length; i += 4) {
    const batch = keys.slice(i, i + 4);
    const text = await c.request(batch.map((k) => `get ${k}\r\n`).join(""), (t) => (t.match(/END\r\n|SERVER_ERROR[^\r]*\r\n/g) ?? []).length >= 4);
    const replies = text.match(/VALUE [^\r]*\r\n[^\r]*\r\nEND\r\n|SERVER_ERROR[^\r]*\r\n/g) ?? [];
    expect(replies.length).toBe(4);
    replies.forEach((reply, j) => {
      if (reply === unavailable) errors++;
      else expect(reply).toBe(`VALUE ${batch[j]} 0 ${batch[j].length}\r\n${batch[j]}\r\nEND\r\n`);
    });
  }
  expect(errors).toBeGreaterThan(0);
  c.close();
});
