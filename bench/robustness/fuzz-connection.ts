/**
 * One fuzzing connection: writes a batch of requests cut at random points into several writes,
 * then a sentinel (`\r\nversion\r\n`), and waits until the sentinel's VERSION reply arrives, the
 * server closes the connection, or the wait times out (a mutated length left the server waiting
 * for a data block that will never come: the connection is given up, as a client would).
 */
import { ascii } from "./bytes.ts";
import { RawStream } from "./raw-stream.ts";
import { ReplyChecker } from "./reply-check.ts";
import type { Rng } from "./rng.ts";

const SENTINEL: Uint8Array = ascii("\r\nversion\r\n");

export type BatchEnd = "synced" | "closed" | "stuck";

export class FuzzConnection {
  readonly replies = new ReplyChecker();
  private stream: RawStream | undefined;
  private sentinels: number = 0;
  private wake: (() => void) | undefined;

  static async open(port: number): Promise<FuzzConnection> {
    const conn = new FuzzConnection();
    conn.stream = await RawStream.connect(port, {
      data(chunk) {
        conn.replies.push(chunk);
        conn.wake?.();
      },
      close() {
        conn.wake?.();
      },
    });
    return conn;
  }

  get closed(): boolean {
    return this.stream!.closed;
  }

  /** Sends `bytes` in 1-8 writes cut at random offsets, yielding to the event loop between some. */
  async sendSplit(bytes: Uint8Array, rng: Rng): Promise<void> {
    const cuts: number[] = [0, bytes.length];
    for (let i = rng.int(8); i > 0; i--) cuts.push(rng.int(bytes.length + 1));
    cuts.sort((a, b) => a - b);
    for (let i = 1; i < cuts.length && !this.closed; i++) {
      this.stream!.write(bytes.subarray(cuts[i - 1], cuts[i]));
      if (rng.chance(0.3)) await Bun.sleep(0);
    }
  }

  /** Sends the sentinel and waits (at most timeoutMs) for its reply; a malformed reply ends the wait too. */
  async finishBatch(timeoutMs: number): Promise<BatchEnd> {
    if (this.closed) return "closed";
    this.sentinels++;
    this.stream!.write(SENTINEL);
    const deadline: number = Date.now() + timeoutMs;
    while (!this.closed && this.replies.malformed === undefined && this.replies.counts.version < this.sentinels) {
      const left: number = deadline - Date.now();
      if (left <= 0) return "stuck";
      await new Promise<void>((resolve) => {
        const timer: Timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.closed ? "closed" : "synced";
  }

  close(): void {
    this.stream?.end();
  }
}
