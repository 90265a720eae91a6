/**
 * A raw client for hostile-input tests: sends exact bytes (strings are taken as latin1, one byte
 * per character, so "\0" and "\xff" arrive as such; nothing is dropped however large), collects
 * what comes back, and waits for a condition, the server closing, or a deadline, whichever is
 * first. Never throws on a timeout: the caller asserts on what arrived.
 */
import { ascii, latin1 } from "./bytes.ts";
import { RawStream } from "./raw-stream.ts";

export class Conversation {
  private text: string = "";
  private stream: RawStream | undefined;
  private wake: (() => void) | undefined;

  static async open(port: number): Promise<Conversation> {
    const conv = new Conversation();
    conv.stream = await RawStream.connect(port, {
      data(chunk) {
        conv.text += latin1(chunk);
        conv.wake?.();
      },
      close() {
        conv.wake?.();
      },
    });
    return conv;
  }

  get closed(): boolean {
    return this.stream!.closed;
  }

  send(bytes: string | Uint8Array): void {
    this.stream!.write(typeof bytes === "string" ? ascii(bytes) : bytes);
  }

  /** Waits until `done(received)`, the close, or timeoutMs; returns (and forgets) what was received. */
  async until(done: (received: string) => boolean, timeoutMs: number): Promise<string> {
    const deadline: number = Date.now() + timeoutMs;
    while (!done(this.text) && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer: Timer = setTimeout(resolve, deadline - Date.now());
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const received: string = this.text;
    this.text = "";
    return received;
  }

  /** Waits for the server to close the connection (at most timeoutMs); returns what arrived. */
  async closedBy(timeoutMs: number): Promise<string> {
    return this.until(() => false, timeoutMs);
  }

  close(): void {
    this.stream?.end();
  }
}
