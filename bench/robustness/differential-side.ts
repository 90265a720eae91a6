/**
 * A server under differential test: Debian's memcached or cacheismo as a child process on a free
 * port, one pipelined connection to it, and its replies read back per request.
 */
import { ReplyReader, type Reply } from "./differential-replies.ts";
import type { CasRef, Op } from "./differential-ops.ts";
import { type RunningProcess, startServer } from "./process.ts";
import { RawStream } from "./raw-stream.ts";

export const MEMORY_MB: number = 64;

/** Replies to a batch: one per request (undefined for noreply), or the first request still unanswered. */
export type Collected = { replies: (Reply | undefined)[]; missing?: undefined } | { replies: (Reply | undefined)[]; missing: number };

/** memcached as Debian installs it, on one thread; fails clearly when it is not installed. */
export async function startMemcached(): Promise<RunningProcess> {
  if (Bun.which("memcached") === null) {
    throw new Error("memcached is not installed: the differential test runs against Debian's memcached (apt-get install memcached; .ci/run installs it)");
  }
  const asRoot: string = process.getuid?.() === 0 ? "-u root " : ""; // memcached refuses to run as root without -u
  return startServer(`memcached ${asRoot}-U 0 -l 127.0.0.1 -p {port} -t 1 -m ${MEMORY_MB}`, []);
}

export class Side {
  private readonly reader = new ReplyReader();
  private stream: RawStream | undefined;
  private wake: (() => void) | undefined;

  private constructor(
    readonly name: string,
    readonly server: RunningProcess,
  ) {}

  static async open(name: string, server: RunningProcess): Promise<Side> {
    const side = new Side(name, server);
    side.stream = await RawStream.connect(server.port, {
      data(chunk) {
        side.reader.push(chunk);
        side.wake?.();
      },
      close() {
        side.wake?.();
      },
    });
    return side;
  }

  /** This server's unique for a cas reference. */
  uniqueOf(ref: CasRef): string {
    return ref.id === undefined ? ref.literal : this.reader.cas.unique(ref.id);
  }

  write(bytes: Uint8Array): void {
    this.stream!.write(bytes);
  }

  /** Why a reply is missing: the connection closed or the reply is late, what arrived, and the server's last log lines. */
  whyMissing(timeoutMs: number): string {
    const state: string = this.stream!.closed ? `closed the connection${this.server.alive() ? "" : " and exited"}` : `sent no complete reply within ${timeoutMs} ms`;
    return `${this.name} ${state} (buffered: ${JSON.stringify(this.reader.leftover())}); its log ends:\n${this.server.logTail()}`;
  }

  /** Waits for the replies to `ops`, until the connection closes or `deadline` (ms since the epoch). */
  async collect(ops: readonly Op[], deadline: number): Promise<Collected> {
    const replies: (Reply | undefined)[] = [];
    for (let i = 0; i < ops.length; i++) {
      const shape = ops[i].shape;
      if (shape === "none") {
        replies.push(undefined);
        continue;
      }
      for (;;) {
        const reply: Reply | undefined = this.reader.take(shape);
        if (reply !== undefined) {
          replies.push(reply);
          break;
        }
        const left: number = deadline - Date.now();
        if (left <= 0 || this.stream!.closed) return { replies, missing: i };
        await new Promise<void>((resolve) => {
          const timer: Timer = setTimeout(resolve, left);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
    return { replies };
  }

  close(): void {
    this.stream?.end();
  }
}
