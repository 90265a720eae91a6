import { expect, test } from "bun:test";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { startServer } from "../src/index.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { freePort } from "./helpers/spawn.ts";

test("input pipelined behind a forwarded request to a silent peer stops being read past --max-conn-buffer", async () => {
  // A peer that accepts connections and never answers.
  const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const selfPort = freePort();
  const peers = `127.0.0.1:${selfPort},127.0.0.1:${silent.port}`;
  await using server = await startServer({ port: selfPort, memoryLimitMb: 8, cluster: true, peers, self: `127.0.0.1:${selfPort}`, peerTimeoutMs: 3000, maxConnBufferBytes: 64 * 1024 });
  const continuum = new Continuum(parseServerList(peers), "md5");
  const keyOwnedBy = (node: number): string => {
    for (let i = 0; ; i++) if (continuum.ownerIndex(new TextEncoder().encode(`k${i}`)) === node) return `k${i}`;
  };
  const remoteKey = keyOwnedBy(1);
  const localKey = keyOwnedBy(0);

  const flood = await RawClient.connect(selfPort);
  const line = `get ${remoteKey}\r\n`;
  flood.send(line.repeat(Math.ceil((4 * 1024 * 1024) / line.length))); // 4 MB behind the first forwarded get
  await Bun.sleep(500);
  const control = await RawClient.connect(selfPort);
  const stats = await control.request("stats\r\n", "END\r\n");
  expect(Number(/STAT conn_yields (\d+)/.exec(stats)![1])).toBeGreaterThanOrEqual(1);
  // The server keeps serving other connections meanwhile.
  expect(await control.request(`set ${localKey} 0 0 1\r\nv\r\nget ${localKey}\r\n`, "END\r\n")).toBe(`STORED\r\nVALUE ${localKey} 0 1\r\nv\r\nEND\r\n`);
  flood.close();
  control.close();
  silent.stop(true);
}, 15_000);
