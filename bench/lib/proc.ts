// Child-process helpers for benches: free ports, tracked spawns, and a kill-all
// that also runs on Ctrl-C so no server outlives the bench.
import { openSync, closeSync, readFileSync } from "node:fs";
import type { Subprocess } from "bun";
import { version } from "./memcache.ts";

const tracked = new Set<Subprocess>();

/** Asks the kernel for a free port on 127.0.0.1 (tiny race before the server binds it). */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port: number = listener.port;
  listener.stop(true);
  return port;
}

/** Remembers a child until it exits so killAll() and the signal handler can end it. */
export function track<P extends Subprocess>(proc: P): P {
  tracked.add(proc);
  proc.exited.then(() => tracked.delete(proc));
  return proc;
}

/** Spawns argv with stdout+stderr appended to logPath. */
export function spawnLogged(argv: string[], logPath: string, cwd?: string): Subprocess {
  const fd: number = openSync(logPath, "a");
  try {
    return track(Bun.spawn(argv, { cwd, stdin: "ignore", stdout: fd, stderr: fd }));
  } finally {
    closeSync(fd); // the child has its own copy
  }
}

/** Last lines of a log file, for error messages. */
export function logTail(logPath: string, lines: number = 20): string {
  try {
    return readFileSync(logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Polls `version` until the server answers; fails early if it exits, or after timeoutMs. */
export async function waitForMemcache(proc: Subprocess, port: number, logPath: string, timeoutMs: number): Promise<void> {
  const deadline: number = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`server on port ${port} exited (${proc.exitCode ?? proc.signalCode}) before accepting:\n${logTail(logPath)}`);
    }
    try {
      await version(port, 500);
      return;
    } catch {
      await Bun.sleep(100);
    }
  }
  throw new Error(`server on port ${port} did not answer "version" within ${timeoutMs} ms:\n${logTail(logPath)}`);
}

/** SIGTERM, then SIGKILL after graceMs if it is still running. */
export async function stop(proc: Subprocess, graceMs: number = 2000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const timedOut: boolean = await Promise.race([
    proc.exited.then(() => false),
    Bun.sleep(graceMs).then(() => true),
  ]);
  if (timedOut) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

export async function killAll(): Promise<void> {
  await Promise.all([...tracked].map((proc) => stop(proc)));
}

/** On Ctrl-C / SIGTERM, kill children synchronously (no awaiting in a signal handler) and exit. */
export function killAllOnSignal(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      for (const proc of tracked) proc.kill("SIGKILL");
      process.exit(130);
    });
  }
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's times. */
const CLOCK_TICKS_PER_SECOND = 100;

/** utime and stime of a process (all its threads), in clock ticks, from /proc. */
export function cpuTicks(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
    return { user: Number(fields[11]), system: Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** The CPU µs (user, system) a process spent per operation between two cpuTicks readings; undefined when either is missing or no operation ran. */
export function cpuMicrosPerOp(
  before: { user: number; system: number } | undefined,
  after: { user: number; system: number } | undefined,
  ops: number,
): { user: number; system: number } | undefined {
  if (before === undefined || after === undefined || ops <= 0) return undefined;
  const usPerTick = 1e6 / CLOCK_TICKS_PER_SECOND;
  return { user: ((after.user - before.user) * usPerTick) / ops, system: ((after.system - before.system) * usPerTick) / ops };
}

/** The machine's idle and total clock ticks over all cores so far, from /proc/stat. */
export function machineTicks(): { idle: number; total: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
  // user nice system idle iowait irq softirq steal
  return { idle: fields[3] + fields[4], total: fields.reduce((sum, n) => sum + n, 0) };
}
