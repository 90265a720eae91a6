/**
 * The single-file executable runs alone: copied into an empty directory, with nothing beside it,
 * it serves memcached and runs the bundled Lua objects (their wasm and scripts are embedded).
 * CI builds dist/cacheismo first and sets CACHEISMO_BIN; without it, beforeAll runs the build.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RawClient } from "./helpers/raw-client.ts";
import { freePort, ROOT, waitForPort } from "./helpers/spawn.ts";

const BUILD_TIMEOUT_MS = 180_000;
let workDir = "";
let exe = "";
const running = new Set<Subprocess>();

async function exitWithin(proc: Subprocess, timeoutMs: number): Promise<number> {
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return code;
}

beforeAll(async () => {
  let source = process.env.CACHEISMO_BIN ? resolve(ROOT, process.env.CACHEISMO_BIN) : "";
  if (!source) {
    const build = Bun.spawn([process.execPath, "run", "build"], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(build.stdout).text(), new Response(build.stderr).text(), exitWithin(build, BUILD_TIMEOUT_MS)]);
    if (code !== 0) throw new Error(`bun run build failed (${code}):\n${out}${err}`);
    source = join(ROOT, "dist/cacheismo");
  }
  workDir = mkdtempSync(join(tmpdir(), "cacheismo-exe-"));
  exe = join(workDir, "cacheismo");
  copyFileSync(source, exe);
  chmodSync(exe, 0o755);
}, BUILD_TIMEOUT_MS + 10_000);

afterAll(async () => {
  for (const proc of running) proc.kill("SIGKILL");
  await Promise.all([...running].map((p) => p.exited));
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** Starts the copied executable from its own empty directory. */
async function startAlone(args: string[]): Promise<{ port: number; proc: Subprocess }> {
  const port = freePort();
  const proc = Bun.spawn([exe, "-p", String(port), ...args], { cwd: workDir, stdin: "ignore", stdout: "ignore", stderr: "inherit" });
  running.add(proc);
  await waitForPort(port);
  return { port, proc };
}

async function stop(proc: Subprocess): Promise<void> {
  proc.kill("SIGTERM");
  expect(await exitWithin(proc, 10_000)).toBe(0);
  running.delete(proc);
}

test("the directory it runs from holds nothing but the executable", () => {
  expect(readdirSync(workDir)).toEqual(["cacheismo"]);
});

test("--version names the version and the git commit it was built from", async () => {
  const proc = Bun.spawn([exe, "--version"], { cwd: workDir, stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), exitWithin(proc, 10_000)]);
  expect(code).toBe(0);
  const head = (await Bun.$`git rev-parse --short HEAD`.cwd(ROOT).nothrow().quiet()).stdout.toString().trim();
  const pkg = (await Bun.file(join(ROOT, "package.json")).json()) as { version: string };
  expect(out).toBe(`cacheismo ${pkg.version} (${head || "unknown"})\n`);
});

test("started alone in an empty directory it stores and returns items", async () => {
  const { port, proc } = await startAlone(["-m", "16"]);
  const c = await RawClient.connect(port);
  expect(await c.request("set greeting 5 0 5\r\nhello\r\n")).toBe("STORED\r\n");
  expect(await c.request("get greeting\r\n", "END\r\n")).toBe("VALUE greeting 5 5\r\nhello\r\nEND\r\n");
  c.close();
  await stop(proc);
});

test("with -e it runs the embedded Lua objects: get quota:new:q1:5:day answers CREATED", async () => {
  const { port, proc } = await startAlone(["-e"]);
  const c = await RawClient.connect(port);
  expect(await c.request("get quota:new:q1:5:day\r\n", "END\r\n")).toBe("VALUE quota:new:q1:5:day 0 7\r\nCREATED\r\nEND\r\n");
  c.close();
  await stop(proc);
});
