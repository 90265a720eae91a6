/**
 * --auto-eject agrees with twemproxy's auto_eject_hosts: three cacheismo nodes and one dead address
 * are both the cluster's --peers and the servers of a nutcracker pool (ketama, md5, failure limit
 * 1). Once both have ejected the dead node, every key stored through nutcracker reaches a node that
 * owns it by its own continuum (no node forwards anything), and each node holds exactly the keys
 * the continuum without the dead node gives it. Needs the Debian package `nutcracker`.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Continuum, parseServerList } from "../src/cluster/ketama.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { ROOT, freePort, serverCommand, waitForPort } from "./helpers/spawn.ts";

const KEYS = 3000;
const nodePorts = [freePort(), freePort(), freePort()];
const deadPort = freePort(); // nothing listens here
const all = [...nodePorts, deadPort];
const peers = all.map((p) => `127.0.0.1:${p}`).join(",");
const DEAD = 3;
const procs: ReturnType<typeof Bun.spawn>[] = [];
const workDir = mkdtempSync(join(tmpdir(), "cacheismo-eject-"));
const nutcrackerPort = freePort();
const enc = new TextEncoder();

beforeAll(async () => {
  if (Bun.which("nutcracker") === null) throw new Error("nutcracker not found: apt-get install -y nutcracker");
  for (const port of nodePorts) {
    const args = ["-p", String(port), "-m", "16", "--cluster", "--peers", peers, "--self", `127.0.0.1:${port}`, "--auto-eject", "--server-failure-limit", "1", "--server-retry-timeout", "600000"];
    // Two threads per node: an ejection one thread sees holds for the other (shared health).
    args.push("-t", "2");
    procs.push(Bun.spawn([...serverCommand(), ...args], { cwd: ROOT, stdout: "ignore", stderr: "ignore" }));
  }
  const yaml =
    `pool:\n  listen: 127.0.0.1:${nutcrackerPort}\n  hash: md5\n  distribution: ketama\n  timeout: 2000\n` +
    `  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  servers:\n` +
    all.map((p) => `   - 127.0.0.1:${p}:1\n`).join("");
  await Bun.write(join(workDir, "nutcracker.yml"), yaml);
  procs.push(
    Bun.spawn(["nutcracker", "-c", join(workDir, "nutcracker.yml"), "-o", join(workDir, "nutcracker.log"), "-s", String(freePort()), "-a", "127.0.0.1", "-p", join(workDir, "nc.pid")], {
      stdout: "ignore",
      stderr: "ignore",
    }),
  );
  await Promise.all([...nodePorts, nutcrackerPort].map((p) => waitForPort(p)));
});
afterAll(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
  rmSync(workDir, { recursive: true, force: true });
});

const stat = (stats: string, name: string): string => new RegExp(`STAT ${name} (\\S+)`).exec(stats)![1];

test(`with a dead node ejected, keys stored through nutcracker (auto_eject_hosts) land on the owner every --auto-eject node agrees on, for ${KEYS} keys`, async () => {
  const full = new Continuum(parseServerList(peers), "md5");
  const deadKey = Array.from({ length: 1000 }, (_, i) => `dead${i}`).find((k) => full.ownerIndex(enc.encode(k)) === DEAD)!;
  const nodes = await Promise.all(nodePorts.map((p) => RawClient.connect(p)));
  const deadLabel = `127.0.0.1:${deadPort}`;
  for (const c of nodes) {
    // One failure ejects the dead node (--server-failure-limit 1); its key then has a live owner.
    expect(await c.request(`get ${deadKey}\r\n`)).toBe(`SERVER_ERROR peer ${deadLabel} unavailable\r\n`);
    const stats = await c.request("stats\r\n", "END\r\n");
    expect(stat(stats, `peer:${deadLabel}:state`)).toBe("ejected");
    expect(stat(stats, `peer:${deadLabel}:ejections`)).toBe("1");
  }
  // Once every node has ejected it, its key has a live owner they agree on.
  for (const c of nodes) expect(await c.request(`get ${deadKey}\r\n`)).toBe("END\r\n");
  // nutcracker ejects it at its first failure too.
  const proxy = await RawClient.connect(nutcrackerPort);
  expect(await proxy.request(`set ${deadKey} 0 0 1\r\nx\r\n`)).toMatch(/^SERVER_ERROR/);
  const forwardedBefore = await Promise.all(nodes.map(async (c) => forwardedTotal(await c.request("stats\r\n", "END\r\n"))));
  const itemsBefore = await Promise.all(nodes.map(async (c) => Number(stat(await c.request("stats\r\n", "END\r\n"), "curr_items"))));

  const keys = Array.from({ length: KEYS }, (_, i) => `ej:${i}:${(i * 2654435761) % 1000003}`);
  const sets = keys.map((k) => `set ${k} 0 0 1\r\nv\r\n`).join("");
  expect(await proxy.request(sets, (t) => t.split("\r\n").length > KEYS)).toBe("STORED\r\n".repeat(KEYS));
  proxy.close();

  const live = new Continuum(parseServerList(peers), "md5");
  live.setAvailable(DEAD, false);
  const owned = [0, 0, 0];
  for (const k of keys) owned[live.ownerIndex(enc.encode(k))]++;
  for (let i = 0; i < nodes.length; i++) {
    const stats = await nodes[i].request("stats\r\n", "END\r\n");
    expect({ node: i, forwarded: forwardedTotal(stats) - forwardedBefore[i], items: Number(stat(stats, "curr_items")) - itemsBefore[i] }).toEqual({
      node: i,
      forwarded: 0,
      items: owned[i],
    });
  }
  expect(owned.every((n) => n > 0)).toBe(true);
  for (const c of nodes) c.close();
}, 60_000);

function forwardedTotal(stats: string): number {
  let total = 0;
  for (const m of stats.matchAll(/STAT peer:\S+:forwarded (\d+)/g)) total += Number(m[1]);
  return total;
}
