/**
 * Server processes a test file starts and watches: stderr collected as it arrives, and every
 * process still running killed after each test (SIGKILL: a graceful stop would wait for clients
 * that never read).
 */
import type { Subprocess } from "bun";
import { RawClient } from "./raw-client.ts";
import { freePort, ROOT, serverCommand, waitForPort } from "./spawn.ts";

export interface LoggedServer {
  readonly port: number;
  readonly proc: Subprocess<"ignore", "ignore", "pipe">;
  client(): Promise<RawClient>;
  /** stderr so far */
  log(): string;
  /** Resolves once stderr matches (bounded). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** The exit code, once the process ended and its stderr was read to the end. */
  readonly exited: Promise<number>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number>;
}

export class ServerProcesses {
  private readonly running = new Set<Subprocess>();

  /** SIGKILLs whatever is still running (call it in afterEach). */
  async killAll(): Promise<void> {
    for (const proc of this.running) proc.kill("SIGKILL");
    await Promise.all([...this.running].map((p) => p.exited));
    this.running.clear();
  }

  /** A process started with argv that is expected to exit (it is still killed after the test). */
  spawn(argv: string[]): Subprocess<"ignore", "ignore", "pipe"> {
    const proc = Bun.spawn(argv, { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    this.running.add(proc);
    return proc;
  }

  /** Starts cacheismo on a free port with `args` and resolves once it accepts connections. */
  async start(args: string[]): Promise<LoggedServer> {
    const port = freePort();
    const proc = this.spawn([...serverCommand(), "-p", String(port), ...args]);
    let text = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) text += decoder.decode(chunk, { stream: true });
    })();
    const exited = proc.exited.then(async (code) => {
      await reading;
      this.running.delete(proc);
      return code;
    });
    try {
      await waitForPort(port);
    } catch (e) {
      throw new Error(`${(e as Error).message}; stderr: ${text}`);
    }
    return {
      port,
      proc,
      client: () => RawClient.connect(port),
      log: () => text,
      async waitForLog(pattern, timeoutMs = 5000) {
        const deadline = Date.now() + timeoutMs;
        while (!pattern.test(text)) {
          if (Date.now() > deadline) throw new Error(`stderr never matched ${pattern}; it was:\n${text}`);
          await Bun.sleep(20);
        }
      },
      exited,
      stop() {
        proc.kill("SIGTERM");
        return exited;
      },
    };
  }
}
