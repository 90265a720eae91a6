import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { RawClient } from "./helpers/raw-client.ts";
import { type SpawnedServer, spawnCacheismo } from "./helpers/spawn.ts";

let server: SpawnedServer | null = null;
afterEach(async () => {
  await server?.kill();
  server = null;
});

function rssFileKb(pid: number): number {
  return Number(/RssFile:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
}

for (const threads of ["1", "2"]) {
  test.skipIf(process.platform !== "linux")(`a listening server (-t ${threads}) holds only the code it runs, and serves`, async () => {
    server = await spawnCacheismo(["-m", "16", "-t", threads]);
    // Untrimmed, an idle server keeps 34-38 MiB of Bun's code resident; trimmed, 15-19 MiB.
    expect(rssFileKb(server.proc.pid)).toBeLessThan(26 * 1024);
    const client = await RawClient.connect(server.port);
    expect(await client.request("set k 0 0 5\r\nhello\r\n")).toBe("STORED\r\n");
    expect(await client.request("get k\r\n")).toBe("VALUE k 0 5\r\nhello\r\nEND\r\n");
    client.close();
  });
}
