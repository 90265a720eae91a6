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

test.skipIf(!thpOffered)("a full arena sits on 2 MiB pages by default, wherever its buffer was placed", async () => {
  // 16 MiB of arena, its first and last 2 MiB (and any unaligned part) on small pages. Before the
  // arena's pages were dropped after the advice, one server in three got none (a buffer in memory
  // the process had used before arrives resident on 4 KiB pages): three servers, three checks.
  for (let i = 0; i < 3; i++) {
    expect(await hugePagesAfterFilling([])).toBeGreaterThanOrEqual(8 * 1024);
    await server?.kill();
    server = null;
  }
});

test.skipIf(!thpOffered)("--small-pages keeps the arena on 4 KiB pages", async () => {
  expect(await hugePagesAfterFilling(["--small-pages"])).toBe(0);
});
