/** src/index.ts: startServer (in this process) and spawnServer (a child) give the same handle. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../src/config.ts";
import { type RunningServer, type ServerOptions, spawnServer, startServer } from "../src/index.ts";
import { RawClient } from "./helpers/raw-client.ts";

/** Every server a test starts, stopped in afterAll even when an assertion failed first. */
const started: RunningServer[] = [];
async function track<T extends RunningServer>(server: Promise<T>): Promise<T> {
  const s = await server;
  started.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

async function isListening(port: number): Promise<boolean> {
  try {
    const c = await RawClient.connect(port);
    c.close();
    return true;
  } catch {
    return false;
  }
}

async function setAndGet(server: RunningServer, key: string): Promise<string> {
  const c = await RawClient.connect(server.port, server.host);
  try {
    expect(await c.request(`set ${key} 0 0 ${key.length}\r\n${key}\r\n`)).toBe("STORED\r\n");
    return await c.request(`get ${key}\r\n`, "END\r\n");
  } finally {
    c.close();
  }
}

const kinds: [string, (options: ServerOptions) => Promise<RunningServer>][] = [
  ["startServer", startServer],
  ["spawnServer", spawnServer],
];

describe.each(kinds)("%s", (_name, start) => {
  test("listens on a free port and describes itself", async () => {
    const server = await track(start({ memoryLimitMb: 8 }));
    expect(server.port).toBeGreaterThan(0);
    expect(server.host).toBe("127.0.0.1");
    expect(server.url).toBe(`memcached://127.0.0.1:${server.port}`);
    expect(server.metricsUrl).toBeNull();
    expect(await setAndGet(server, "k1")).toBe("VALUE k1 0 2\r\nk1\r\nEND\r\n");
  });

  test("stats() resolves to the stats counters, flush() drops every item", async () => {
    const server = await track(start({ memoryLimitMb: 8 }));
    await setAndGet(server, "a");
    const stats = await server.stats();
    expect(stats.curr_items).toBe("1");
    expect(stats.cmd_get).toBe("1");
    expect(stats.limit_maxbytes).toBe(String(8 * 1024 * 1024));
    await server.flush();
    const c = await RawClient.connect(server.port);
    expect(await c.request("get a\r\n", "END\r\n")).toBe("END\r\n");
    c.close();
  });

  test("await using stops it at the end of the scope; stop() may be called again", async () => {
    let outer: RunningServer | undefined;
    {
      await using server = await start({});
      outer = server;
      expect(await isListening(server.port)).toBe(true);
    }
    expect(await isListening(outer.port)).toBe(false);
    await outer.stop();
  });

  test("memoryFile: what was stored before stop() is there after the next start with the same file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cacheismo-api-restart-"));
    const memoryFile = join(dir, "cache.mem");
    try {
      const first = await track(start({ memoryLimitMb: 4, memoryFile }));
      expect(await setAndGet(first, "kept")).toBe("VALUE kept 0 4\r\nkept\r\nEND\r\n");
      await first.stop();
      const second = await track(start({ memoryLimitMb: 4, memoryFile }));
      expect((await second.stats()).curr_items).toBe("1");
      const c = await RawClient.connect(second.port, second.host);
      expect(await c.request("get kept\r\n", "END\r\n")).toBe("VALUE kept 0 4\r\nkept\r\nEND\r\n");
      c.close();
      await second.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("options are checked like flags and a bad one is a ConfigError naming it", async () => {
    await expect(start({ memoryLimitMb: 0 })).rejects.toThrow(ConfigError);
    await expect(start({ memoryLimitMb: 0 })).rejects.toThrow("memoryLimitMb must be between 1 and");
  });
});

test("startServer runs one thread unless asked; threads: 2 serves one store from two worker threads", async () => {
  const alone = await track(startServer({ memoryLimitMb: 4 }));
  expect((await alone.stats()).threads).toBe("1");
  const pooled = await track(startServer({ memoryLimitMb: 4, threads: 2 }));
  expect(await setAndGet(pooled, "shared")).toBe("VALUE shared 0 6\r\nshared\r\nEND\r\n");
  const stats = await pooled.stats();
  expect(stats.threads).toBe("2");
  expect(stats.curr_items).toBe("1");
  await pooled.flush();
  expect((await pooled.stats()).curr_items).toBe("0");
  await pooled.stop();
  expect(await isListening(pooled.port)).toBe(false);
});

test("many servers of both kinds run side by side, each with its own items", async () => {
  const servers = await Promise.all([
    track(startServer({ memoryLimitMb: 4 })),
    track(startServer({ memoryLimitMb: 4 })),
    track(startServer({ memoryLimitMb: 4 })),
    track(spawnServer({ memoryLimitMb: 4 })),
    track(spawnServer({ memoryLimitMb: 4 })),
  ]);
  expect(new Set(servers.map((s) => s.port)).size).toBe(servers.length);
  await Promise.all(servers.map((s, i) => setAndGet(s, `only-on-${i}`)));
  for (const [i, s] of servers.entries()) {
    const stats = await s.stats();
    expect(stats.curr_items).toBe("1");
    const c = await RawClient.connect(s.port);
    expect(await c.request(`get only-on-${(i + 1) % servers.length}\r\n`, "END\r\n")).toBe("END\r\n");
    c.close();
  }
});

describe("spawnServer", () => {
  test("runs a separate process that exits 0 when stopped", async () => {
    const server = await track(spawnServer({ memoryLimitMb: 4 }));
    expect(server.pid).not.toBe(process.pid);
    expect((await server.stats()).pid).toBe(String(server.pid));
    await server.stop();
    expect(await server.exited).toBe(0);
  });

  test("passes every option to the child as its flag", async () => {
    const server = await track(spawnServer({ memoryLimitMb: 12, connLimit: 7, maxItemSizeBytes: 4096, enableShutdown: true }));
    const c = await RawClient.connect(server.port);
    const settings = await c.request("stats settings\r\n", "END\r\n");
    c.close();
    expect(settings).toContain(`STAT maxbytes ${12 * 1024 * 1024}\r\n`);
    expect(settings).toContain("STAT maxconns 7\r\n");
    expect(settings).toContain("STAT item_size_max 4096\r\n");
    expect(settings).toContain("STAT shutdown_command yes\r\n");
  });

  test("a child that cannot start is reported with its exit code and output", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cacheismo-api-"));
    const script = join(dir, "fails.sh");
    writeFileSync(script, "#!/bin/sh\necho 'no luck' >&2\nexit 3\n", { mode: 0o755 });
    try {
      await expect(spawnServer({ executable: script, startTimeoutMs: 3000 })).rejects.toThrow(/exited with 3: no luck/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
