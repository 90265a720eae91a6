/**
 * The process side of operations, against the source or (with CACHEISMO_BIN) the executable:
 * signals, the --config file and SIGHUP, log formats on stderr, the metrics endpoint.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RawClient } from "./helpers/raw-client.ts";
import { type LoggedServer, ServerProcesses } from "./helpers/server-processes.ts";
import { freePort, serverCommand } from "./helpers/spawn.ts";

const dir = mkdtempSync(join(tmpdir(), "cacheismo-ops-"));
const servers = new ServerProcesses();

afterEach(() => servers.killAll());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const start = (args: string[]): Promise<LoggedServer> => servers.start(args);

/** Exit code, or a failure if the process outlives timeoutMs. */
async function exitWithin(proc: Subprocess, timeoutMs: number): Promise<number> {
  const timeout = Bun.sleep(timeoutMs).then(() => "timeout" as const);
  const code = await Promise.race([proc.exited, timeout]);
  if (code === "timeout") throw new Error(`still running ${timeoutMs} ms after the signal`);
  return code;
}

async function request(port: number, text: string, ending = "END\r\n"): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    return await c.request(text, ending);
  } finally {
    c.close();
  }
}

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function runToExit(args: string[]): Promise<{ code: number; err: string }> {
  const proc = servers.spawn([...serverCommand(), ...args]);
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), exitWithin(proc, 10000)]);
  return { code, err };
}

describe("signals", () => {
  test.each(["SIGTERM", "SIGINT"] as const)("%s stops accepting, logs the shutdown and exits 0", async (signal) => {
    const server = await start(["-v"]);
    expect(await request(server.port, "set k 0 0 1\r\nv\r\n", "\r\n")).toBe("STORED\r\n");
    const sentAt = Date.now();
    server.proc.kill(signal);
    expect(await exitWithin(server.proc, 5000)).toBe(0);
    expect(Date.now() - sentAt).toBeLessThan(3000);
    expect(server.log()).toContain(`msg="shutting down" signal=${signal} timeout_s=5`);
    expect(server.log()).toContain(`msg=stopped signal=${signal}`);
    await expect(RawClient.connect(server.port)).rejects.toThrow();
  });
});

describe("--config and SIGHUP", () => {
  test("flags on the command line win over the config file", async () => {
    const conf = writeConfig("flags.conf", "memory-limit = 32\nconn-limit = 50\n");
    const server = await start(["--config", conf, "-m", "16"]);
    const settings = await request(server.port, "stats settings\r\n");
    expect(settings).toContain(`STAT maxbytes ${16 * 1024 * 1024}\r\n`);
    expect(settings).toContain("STAT maxconns 50\r\n");
  });

  test("an unknown key in the config file exits 2 naming the key", async () => {
    const conf = writeConfig("unknown.conf", "memory-limit = 32\nmax-memory = 5\n");
    const { code, err } = await runToExit(["--config", conf]);
    expect(code).toBe(2);
    expect(err).toStartWith(`cacheismo: ${conf}: unknown key "max-memory"\n`);
  });

  test("SIGHUP applies changed live options at once and logs the others as needing a restart", async () => {
    const conf = writeConfig("reload.conf", "conn-limit = 100\nverbose = 1\n");
    const server = await start(["--config", conf]);
    expect(await request(server.port, "stats settings\r\n")).toContain("STAT maxconns 100\r\n");

    writeFileSync(conf, "conn-limit = 200\nverbose = 1\nmemory-limit = 32\n");
    server.proc.kill("SIGHUP");
    await server.waitForLog(/msg=reloaded /);
    expect(server.log()).toContain('level=info msg="config changed" option=conn-limit from=100 to=200\n');
    expect(server.log()).toContain('level=warn msg="config change needs a restart" option=memory-limit running=64 file=32\n');
    const settings = await request(server.port, "stats settings\r\n");
    expect(settings).toContain("STAT maxconns 200\r\n");
    expect(settings).toContain(`STAT maxbytes ${64 * 1024 * 1024}\r\n`);
    expect(server.proc.exitCode).toBeNull();
  });

  test("SIGHUP with a broken config file logs an error and keeps the running configuration", async () => {
    const conf = writeConfig("broken.conf", "conn-limit = 100\n");
    const server = await start(["--config", conf]);
    writeFileSync(conf, 'conn-limit = "many"\n');
    server.proc.kill("SIGHUP");
    await server.waitForLog(/level=error msg="reload failed; keeping the running configuration"/);
    expect(server.log()).toContain("conn-limit must be a whole number");
    expect(await request(server.port, "stats settings\r\n")).toContain("STAT maxconns 100\r\n");
  });
});

describe("logs", () => {
  test("--log-format json writes one JSON object per stderr line, without colour on a pipe", async () => {
    const server = await start(["--log-format", "json", "-v"]);
    await server.waitForLog(/"msg":"listening"/);
    server.proc.kill("SIGTERM");
    expect(await exitWithin(server.proc, 5000)).toBe(0);
    const lines = server.log().trimEnd().split("\n");
    const events = lines.map((line) => JSON.parse(line) as { time: string; level: string; msg: string });
    expect(events.map((e) => e.msg)).toEqual(["listening", "shutting down", "stopped"]);
    expect(events[0]).toMatchObject({ level: "info", addr: `127.0.0.1:${server.port}`, memory_mb: 64 });
    expect(server.log()).not.toContain("\x1b[");
  });

  test("without -v only warnings and errors are written", async () => {
    const server = await start([]);
    server.proc.kill("SIGTERM");
    expect(await exitWithin(server.proc, 5000)).toBe(0);
    expect(server.log()).toBe("");
  });
});

describe("--metrics-port", () => {
  test("serves Prometheus text with the stats counters and /healthz from the process", async () => {
    const metricsPort = freePort();
    const server = await start(["--metrics-port", String(metricsPort)]);
    expect(await request(server.port, "get nothing\r\n")).toBe("END\r\n");
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    expect(text).toContain("# TYPE cacheismo_get_misses counter\ncacheismo_get_misses 1\n");
    expect(text).toContain(`cacheismo_limit_maxbytes ${64 * 1024 * 1024}\n`);
    expect(text).toContain('cacheismo_command_duration_seconds_count{command="get"} 1\n');
    const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(health.status).toBe(200);
  });
});
