import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { RawClient } from "./helpers/raw-client.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

const THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled";
const thpOffered = existsSync(THP_MODE) && !readFileSync(THP_MODE, "utf8").includes("[never]");
const VALUE_BYTES = 512 * 1024;

let server: SpawnedServer | null = null;
afterEach(async () => {
  await server?.kill();
  server = null;
});

/** Starts the server with `args`, stores 48 values of 512 KiB (more than its 16 MiB), returns its AnonHugePages in kB. */
async function hugePagesAfterFilling(args: string[]): Promise<number> {
  server = await spawnCacheismo(["-m", "16", "-t", "1", ...args]);
  const client = await RawClient.connect(server.port);
  const value = "v".repeat(VALUE_BYTES);
  for (let i = 0; i < 48; i++) expect(await client.request(`set fill${i} 0 0 ${VALUE_BYTES}\r\n${value}\r\n`)).toBe("STORED\r\n");
  client.close();
  const rollup = readFileSync(`/proc/${server.proc.pid}/smaps_rollup`, "utf8");
  return Number(/AnonHugePages:\s+(\d+) kB/.exec(rollup)?.[1]);
}

// That the default arena gets huge pages is checked on the arena itself, in a fresh process
// (store-huge-pages.test.ts): a server started inside the full suite once showed none for its
// 16 MiB arena (the kernel's thp_fault_fallback stayed 0), which is not explained yet.
test.skipIf(!thpOffered)("--small-pages keeps the arena on 4 KiB pages", async () => {
  expect(await hugePagesAfterFilling(["--small-pages"])).toBe(0);
});
