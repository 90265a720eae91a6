/**
 * The server under test for the robustness benches and tests: spawned on a free port, its
 * resident memory read from /proc, stopped (SIGTERM, then SIGKILL) when done.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { freePort, logTail, spawnLogged, stop, waitForMemcache } from "../lib/proc.ts";

const REPO_ROOT: string = resolve(import.meta.dir, "../..");
const STARTUP_TIMEOUT_MS: number = 15_000;

/** How cacheismo is started: the compiled executable when CACHEISMO_BIN is set, else `bun run src/main.ts`. */
export function defaultServerTemplate(): string {
  const bin: string | undefined = process.env.CACHEISMO_BIN;
  return bin ? `${resolve(REPO_ROOT, bin)} -p {port}` : `bun run ${join(REPO_ROOT, "src/main.ts")} -p {port}`;
}

export interface RunningProcess {
  readonly port: number;
  readonly proc: Subprocess;
  /** Still running (no exit code, no signal). */
  alive(): boolean;
  /** Resident set size in bytes, from /proc/<pid>/status; 0 once the process is gone. */
  rssBytes(): number;
  /** The last lines the server wrote to stdout/stderr. */
  logTail(): string;
  /** Stops the server and deletes its log. */
  stop(): Promise<void>;
}

/** Starts `template` ("{port}" replaced; words split on whitespace) with `extraArgs` appended. */
export async function startServer(template: string, extraArgs: readonly string[]): Promise<RunningProcess> {
  if (!template.includes("{port}")) throw new Error('the server command must contain "{port}"');
  const port: number = freePort();
  const argv: string[] = [...template.trim().split(/\s+/).map((w) => w.replaceAll("{port}", String(port))), ...extraArgs];
  const logDir: string = mkdtempSync(join(tmpdir(), "cacheismo-robustness-"));
  const logPath: string = join(logDir, "server.log");
  const proc: Subprocess = spawnLogged(argv, logPath, REPO_ROOT);
  const stopAndClean = async (): Promise<void> => {
    await stop(proc);
    rmSync(logDir, { recursive: true, force: true });
  };
  try {
    await waitForMemcache(proc, port, logPath, STARTUP_TIMEOUT_MS);
  } catch (error) {
    await stopAndClean();
    throw error;
  }
  return {
    port,
    proc,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    rssBytes: () => {
      try {
        return rssBytes(proc.pid);
      } catch {
        return 0; // exited (the /proc entry is gone)
      }
    },
    logTail: () => logTail(logPath),
    stop: stopAndClean,
  };
}

export function rssBytes(pid: number): number {
  const status: string = readFileSync(`/proc/${pid}/status`, "utf8");
  const match: RegExpExecArray | null = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}
