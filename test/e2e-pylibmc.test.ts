/** A libmemcached client (Debian's python3-pylibmc) against a real server process. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { resolve } from "node:path";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

const SCRIPT: string = resolve(import.meta.dir, "peers/pylibmc_calls.py");
const SCRIPT_TIMEOUT_MS: number = 30_000;

let server: SpawnedServer;
beforeAll(async () => {
  server = await spawnCacheismo(["-m", "64"]);
});
afterAll(async () => {
  await server.kill();
});

test("pylibmc's common calls work: multi-key set/get of 5000 keys, cas, incr/decr, append/prepend, touch, add/replace, delete_multi, TooBig, get_stats, flush_all", async () => {
  // Debian's python3 (pylibmc is a Debian package, not on another interpreter's path).
  const run = Bun.spawn(["/usr/bin/python3", SCRIPT, String(server.port)], { stdout: "pipe", stderr: "pipe" });
  const timer: Timer = setTimeout(() => run.kill(), SCRIPT_TIMEOUT_MS);
  const [out, err] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text()]);
  clearTimeout(timer);
  expect(err).toBe("");
  expect(out.trim()).toMatch(/^ok \d+ checks$/);
  expect(await run.exited).toBe(0);
}, SCRIPT_TIMEOUT_MS + 5000);
