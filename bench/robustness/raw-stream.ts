/**
 * A TCP connection that never drops bytes: what the socket does not take is queued and written
 * on drain. Received chunks go to a callback; reading can be paused (to play a client that does
 * not read) and resumed.
 */
import type { Socket } from "bun";

export interface StreamEvents {
  data(chunk: Uint8Array): void;
  close(): void;
}

export class RawStream {
  closed: boolean = false;
  private socket: Socket<undefined> | undefined;
  private readonly unsent: Uint8Array[] = [];

  private constructor(private readonly events: StreamEvents) {}

  static async connect(port: number, events: StreamEvents): Promise<RawStream> {
    const stream = new RawStream(events);
    stream.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data(_socket, chunk) {
          events.data(chunk);
        },
        drain() {
          stream.flush();
        },
        close() {
          stream.markClosed();
        },
        error() {
          stream.markClosed();
        },
      },
    });
    stream.socket.setNoDelay(true);
    return stream;
  }

  write(bytes: Uint8Array): void {
    if (this.closed || bytes.length === 0) return;
    this.unsent.push(bytes);
    if (this.unsent.length === 1) this.flush();
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  end(): void {
    this.socket?.end();
    this.markClosed();
  }

  private flush(): void {
    while (this.unsent.length > 0 && !this.closed) {
      const head: Uint8Array = this.unsent[0];
      const written: number = this.socket!.write(head);
      if (written < 0) return this.markClosed();
      if (written < head.length) {
        this.unsent[0] = head.subarray(written);
        return;
      }
      this.unsent.shift();
    }
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsent.length = 0;
    this.events.close();
  }
}
