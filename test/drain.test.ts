import { expect, test } from "bun:test";
import { startServer } from "../src/index.ts";
import { RawClient } from "./helpers/raw-client.ts";

test("a graceful stop finishes a half-received request, then closes the connection and stops listening", async () => {
  const handle = await startServer({ port: 0, memoryLimitMb: 4 });
  const busy = await RawClient.connect(handle.port);
  const quiet = await RawClient.connect(handle.port);
  expect(await quiet.request("version\r\n")).toStartWith("VERSION ");
  busy.send("set k 0 0 10\r\n01234");
  await Bun.sleep(50);
  const drained = handle.server!.drain(3000);
  await Bun.sleep(100);
  // The idle connection is closed at once; the busy one is still allowed to finish.
  expect(quiet.closed).toBe(true);
  expect(busy.closed).toBe(false);
  busy.send("56789\r\n");
  expect(await busy.readUntil((t) => t.includes("\r\n"))).toBe("STORED\r\n");
  await drained;
  expect(await busy.waitClosed()).toBe("");
  await expect(RawClient.connect(handle.port)).rejects.toThrow();
  await handle.stop();
});
