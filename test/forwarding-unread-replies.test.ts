/**
 * A client that pipelines forwarded gets of a large value and never reads its replies: the
 * forwarding node stops reading it once --max-conn-buffer of replies wait, and has at most a
 * bounded number of forwarded requests out for it meanwhile, so its memory stays bounded.
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { ROOT, freePort, serverCommand, waitForPort } from "./helpers/spawn.ts";

const ports = [freePort(), freePort()];
const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
const procs = ports.map((port) =>
  Bun.spawn([...serverCommand(), "-p", String(port), "-m", "16", "--max-conn-buffer", "1m", "--cluster", "--peers", peers, "--self", `127.0.0.1:${port}`], {
    cwd: ROOT,
    stdout: "ignore",
    stderr: "ignore",
  }),
);
afterAll(async () => {
  // SIGKILL: a graceful stop would wait --shutdown-timeout for the client that never reads.
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
});

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

test("a client that never reads its forwarded replies cannot make the forwarding node buffer without bound", async () => {
  await Promise.all(ports.map((p) => waitForPort(p)));
  const continuum = new Continuum(parseServerList(peers), "md5");
  let key = "";
  for (let i = 0; ; i++) if (continuum.ownerIndex(new TextEncoder().encode((key = `big${i}`))) === 1) break;
  const value = "x".repeat(256 * 1024);
  const writer = await RawClient.connect(ports[1]);
  expect(await writer.request(`set ${key} 0 0 ${value.length}\r\n${value}\r\n`)).toBe("STORED\r\n");
  writer.close();

  const forwarder = procs[0].pid;
  const before = rssBytes(forwarder);
  // 800 gets of 256 KiB: 200 MiB of replies, none of them read.
  const sink = await RawClient.connect(ports[0]);
  sink.send(`get ${key}\r\n`.repeat(800));
  let peak = 0;
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    peak = Math.max(peak, rssBytes(forwarder));
    await Bun.sleep(100);
  }
  // The node keeps serving others meanwhile.
  const other = await RawClient.connect(ports[0]);
  expect(await other.request(`get ${key}\r\n`, "END\r\n")).toBe(`VALUE ${key} 0 ${value.length}\r\n${value}\r\nEND\r\n`);
  other.close();
  sink.close();
  expect(peak - before).toBeLessThan(100 * 1024 * 1024);
}, 30_000);
