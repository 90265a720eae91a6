/** A bare TCP client for protocol tests: send bytes, read until the reply is complete. */
import type { Socket } from "bun";

export class RawClient {
  private received = new Uint8Array(0);
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(private socket: Socket<undefined> | null) {}

  static async connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    const client = new RawClient(null);
    client.socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data(_s, chunk) {
          const merged = new Uint8Array(client.received.length + chunk.length);
          merged.set(client.received);
          merged.set(chunk, client.received.length);
          client.received = merged;
          client.waiter?.();
        },
        close() {
          client.closed = true;
          client.waiter?.();
        },
      },
    });
    return client;
  }

  send(data: string | Uint8Array): void {
    this.socket!.write(data);
  }

  /** Waits until the received bytes satisfy `done` (or the socket closes / time runs out). */
  async readUntil(done: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = Buffer.from(this.received).toString("latin1");
      if (done(text) || this.closed) {
        this.received = new Uint8Array(0);
        return text;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting; received so far: ${JSON.stringify(text.slice(0, 300))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
  }

  /** Sends a request and reads until the reply ends with `ending` (default: a line end). */
  async request(data: string | Uint8Array, ending: string | RegExp | ((text: string) => boolean) = "\r\n"): Promise<string> {
    this.send(data);
    const done =
      typeof ending === "string" ? (t: string) => t.endsWith(ending) : ending instanceof RegExp ? (t: string) => ending.test(t) : ending;
    return this.readUntil(done);
  }

  /** Waits for the server to close the connection; returns what arrived before that. */
  async waitClosed(timeoutMs = 5000): Promise<string> {
    return this.readUntil(() => this.closed, timeoutMs);
  }

  close(): void {
    this.socket?.end();
  }
}
