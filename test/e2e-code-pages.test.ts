import { afterEach, expect, test } from "bun:test";
import { ServerProcesses } from "./helpers/server-processes.ts";

const servers = new ServerProcesses();
afterEach(() => servers.killAll());

for (const threads of ["1", "2"]) {
  test.skipIf(process.platform !== "linux")(`a starting server (-t ${threads}) gives back the code pages startup ran, and serves`, async () => {
    const server = await servers.start(["-m", "16", "-t", threads, "--log-format", "json", "-v"]);
    await server.waitForLog(/"msg":"listening"/);
    const listening = JSON.parse(server.log().split("\n").find((line) => line.includes('"msg":"listening"'))!);
    // Startup leaves 27 MiB of Bun's code resident; the trim gives back 23-25 MiB of it.
    expect(Number(listening.code_released_mb)).toBeGreaterThan(8);
    const client = await server.client();
    expect(await client.request("set k 0 0 5\r\nhello\r\n")).toBe("STORED\r\n");
    expect(await client.request("get k\r\n")).toBe("VALUE k 0 5\r\nhello\r\nEND\r\n");
    client.close();
  });
}
