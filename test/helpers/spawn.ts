/**
 * Starts cacheismo as a separate process: `bun run src/main.ts`, or the compiled executable when
 * CACHEISMO_BIN is set (CI runs the end-to-end files both ways).
 */
import type { Subprocess } from "bun";
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");

export function serverCommand(): string[] {
  const bin = process.env.CACHEISMO_BIN;
  return bin ? [resolve(ROOT, bin)] : ["bun", "run", resolve(ROOT, "src/main.ts")];
}

/** A port that was free a moment ago. */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Resolves once something accepts TCP connections on the port (bounded by timeoutMs). */
export async function waitForPort(port: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
      await Bun.sleep(50);
    }
  }
}

export interface SpawnedServer {
  readonly port: number;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  kill(): Promise<void>;
}

export async function spawnCacheismo(args: string[] = [], cwd = ROOT): Promise<SpawnedServer> {
  const port = freePort();
  const proc = Bun.spawn([...serverCommand(), "-p", String(port), ...args], { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  try {
    await waitForPort(port);
  } catch (e) {
    proc.kill();
    throw new Error(`${(e as Error).message}; stderr: ${await new Response(proc.stderr).text()}`);
  }
  return {
    port,
    proc,
    async kill() {
      proc.kill();
      await proc.exited;
    },
  };
}
