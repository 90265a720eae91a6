import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningServer, startServer } from "../src/index.ts";
import { RawClient } from "./helpers/raw-client.ts";

let server: RunningServer;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "cacheismo-auth-"));
  const file = join(dir, "auth");
  writeFileSync(file, "# users\nalice:s3cret\nbob:hunter2\n");
  server = await startServer({ port: 0, memoryLimitMb: 4, authFile: file });
});
afterAll(async () => {
  await server.stop();
});

test("with --auth-file every command but the auth set is refused until the client authenticates", async () => {
  const c = await RawClient.connect(server.port);
  expect(await c.request("get k\r\n")).toBe("CLIENT_ERROR unauthenticated\r\n");
  expect(await c.request("stats\r\n")).toBe("CLIENT_ERROR unauthenticated\r\n");
  expect(await c.request("set auth 0 0 12\r\nalice wrong!\r\n")).toBe("CLIENT_ERROR authentication failure\r\n");
  expect(await c.request("get k\r\n")).toBe("CLIENT_ERROR unauthenticated\r\n");
  expect(await c.request("set auth 0 0 12\r\nalice s3cret\r\n")).toBe("STORED\r\n");
  expect(await c.request("set k 0 0 1\r\nv\r\n")).toBe("STORED\r\n");
  expect(await c.request("get k auth\r\n", "END\r\n")).toBe("VALUE k 0 1\r\nv\r\nEND\r\n");
  c.close();
  // Authentication belongs to the connection.
  const other = await RawClient.connect(server.port);
  expect(await other.request("get k\r\n")).toBe("CLIENT_ERROR unauthenticated\r\n");
  other.close();
});
