/** The command line, run as a real process (the source or, with CACHEISMO_BIN, the executable). */
import { describe, expect, test } from "bun:test";
import { RawClient } from "./helpers/raw-client.ts";
import { ROOT, serverCommand, spawnCacheismo } from "./helpers/spawn.ts";

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([...serverCommand(), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, err };
}

function rssKb(pid: number): number {
  const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8") as string;
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

describe("command line", () => {
  test("--help lists every flag and exits 0", async () => {
    const { code, out } = await runCli(["--help"]);
    expect(code).toBe(0);
    for (const flag of ["--port", "--listen", "--memory-limit", "--conn-limit", "--max-item-size", "--verbose", "--version"]) {
      expect(out).toContain(flag);
    }
  });

  test("--version prints the version and commit", async () => {
    const { code, out } = await runCli(["-V"]);
    expect(code).toBe(0);
    expect(out).toMatch(/^cacheismo \d+\.\d+\.\d+ \(\S+\)\n$/);
  });

  test("an unknown or malformed flag prints a clear message and exits 2", async () => {
    const misconfigured = [
      ["--cluster", "--peers", "127.0.0.1:1", "--self", "127.0.0.1:2"],
      ["--cluster", "--peers", "127.0.0.1:1", "--self", "127.0.0.1:1", "--hash", "nope"],
      ["--auth-file", "/nonexistent/auth"],
      ["--eviction", "fifo"],
    ];
    for (const args of [["--bogus"], ["-m", "abc"], ["-p", "70000"], ["-I", "12q"], ["stray"], ...misconfigured]) {
      const { code, err } = await runCli(args);
      expect(code).toBe(2);
      expect(err).toStartWith("cacheismo: ");
    }
  });

  test("a 16 GiB cache starts and its RSS grows with data, not with -m", async () => {
    const server = await spawnCacheismo(["-m", "16384"]);
    try {
      const c = await RawClient.connect(server.port);
      expect(await c.request("set a 0 0 1\r\nx\r\n")).toBe("STORED\r\n");
      const stats = await c.request("stats\r\n", "END\r\n");
      expect(stats).toContain(`STAT limit_maxbytes ${16384 * 1024 * 1024}\r\n`);
      c.close();
      expect(rssKb(server.proc.pid)).toBeLessThan(300 * 1024);
    } finally {
      await server.kill();
    }
  });

  test("-I accepts k and m suffixes and bounds the item size", async () => {
    const server = await spawnCacheismo(["-I", "2k"]);
    try {
      const c = await RawClient.connect(server.port);
      expect(await c.request(`set a 0 0 1900\r\n${"x".repeat(1900)}\r\n`)).toBe("STORED\r\n");
      expect(await c.request(`set b 0 0 2100\r\n${"x".repeat(2100)}\r\n`)).toBe("SERVER_ERROR object too large for cache\r\n");
      c.close();
    } finally {
      await server.kill();
    }
  });
});
