/** The servers under test: how to start them, and what to read from them at the end of a run. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { stats } from "../lib/memcache.ts";
import { freePort, spawnLogged, stop, waitForMemcache } from "../lib/proc.ts";

const STARTUP_TIMEOUT_MS = 15_000;

export interface ServerSpec {
  readonly name: string;
  /** argv; "{port}" is replaced by the port. */
  readonly argv: readonly string[];
}

export interface RunningServer {
  readonly spec: ServerSpec;
  readonly port: number;
  readonly proc: Subprocess;
  readonly logPath: string;
}

/** What a server reports about its memory once the replay is over. */
export interface ServerMemory {
  rssBytes: number | undefined;
  /** VmHWM: the highest RSS the process ever had. */
  peakRssBytes: number | undefined;
  /** `stats` bytes, limit_maxbytes, curr_items, evictions. */
  bytes: number | undefined;
  limitMaxbytes: number | undefined;
  currItems: number | undefined;
  evictions: number | undefined;
}

/**
 * `template` is split on whitespace (no shell quoting). "{mb}" becomes memoryMb; without it and
 * without -m, "-m <memoryMb>" is appended so both servers get the same memory.
 */
export function targetSpec(template: string, memoryMb: number, eviction: string | undefined): ServerSpec {
  const argv = template.trim().split(/\s+/).map((w) => w.replaceAll("{mb}", String(memoryMb)));
  if (!template.includes("{mb}") && !argv.includes("-m") && !argv.includes("--memory-limit")) argv.push("-m", String(memoryMb));
  if (eviction !== undefined) argv.push("--eviction", eviction);
  return { name: "cacheismo", argv };
}

export function memcachedSpec(memoryMb: number): ServerSpec {
  const asRoot = process.getuid?.() === 0 ? ["-u", "root"] : []; // memcached refuses root without -u
  return { name: "memcached", argv: ["memcached", ...asRoot, "-U", "0", "-l", "127.0.0.1", "-p", "{port}", "-m", String(memoryMb)] };
}

export async function startServer(spec: ServerSpec, workDir: string, cwd: string, label: string): Promise<RunningServer> {
  const port = freePort();
  const logPath = join(workDir, `${label}-${spec.name}.log`);
  const proc = spawnLogged(spec.argv.map((w) => w.replaceAll("{port}", String(port))), logPath, cwd);
  try {
    await waitForMemcache(proc, port, logPath, STARTUP_TIMEOUT_MS);
  } catch (error) {
    await stop(proc);
    throw error;
  }
  return { spec, port, proc, logPath };
}

export async function serverMemory(server: RunningServer): Promise<ServerMemory> {
  const s = await stats(server.port, 5000);
  const num = (name: string): number | undefined => (s.has(name) ? Number(s.get(name)) : undefined);
  return {
    rssBytes: statusBytes(server.proc.pid, "VmRSS"),
    peakRssBytes: statusBytes(server.proc.pid, "VmHWM"),
    bytes: num("bytes"),
    limitMaxbytes: num("limit_maxbytes"),
    currItems: num("curr_items"),
    evictions: num("evictions"),
  };
}

/** A "<field>: N kB" line of /proc/<pid>/status (VmRSS, VmHWM, ...), in bytes. */
export function statusBytes(pid: number, field: string): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
