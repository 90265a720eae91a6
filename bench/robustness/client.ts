/**
 * A pipelining memcached text-protocol client for the benches: each request says which reply
 * shape it expects (one line, or VALUE blocks up to END), replies are matched in order.
 */
import { ascii, ByteQueue, latin1 } from "./bytes.ts";
import { RawStream } from "./raw-stream.ts";

export interface Item {
  key: string;
  flags: number;
  value: Uint8Array;
  /** Present for gets/gats. */
  cas: bigint | undefined;
}

/** A retrieval reply: the items, or the one line the server sent instead (e.g. CLIENT_ERROR ...). */
export type Retrieval = { items: Item[]; error?: undefined } | { items?: undefined; error: string };

interface Pending {
  readonly kind: "line" | "retrieval";
  readonly request: string | Uint8Array;
  readonly items: Item[];
  readonly resolve: (reply: string | Retrieval) => void;
  readonly reject: (error: Error) => void;
}

const VALUE_LINE: RegExp = /^VALUE ([^ ]+) (\d+) (\d+)(?: (\d+))?$/;

/** How long a request may wait for its reply before the server is taken for hung (the liveness deadline). */
export const REPLY_DEADLINE_MS: number = 5000;

export class McClient {
  private readonly received = new ByteQueue();
  private readonly pending: Pending[] = [];
  private stream: RawStream | undefined;
  private failure: Error | undefined;
  /** A VALUE line already taken whose data block has not fully arrived. */
  private header: { key: string; flags: number; bytes: number; cas: bigint | undefined } | undefined;

  private constructor(private readonly timeoutMs: number) {}

  static async connect(port: number, timeoutMs: number = REPLY_DEADLINE_MS): Promise<McClient> {
    const client = new McClient(timeoutMs);
    client.stream = await RawStream.connect(port, {
      data(chunk) {
        client.received.push(chunk);
        client.pump();
      },
      close() {
        const waiting: Pending | undefined = client.pending[0];
        client.fail(new Error(`connection closed by the server${waiting ? ` before answering ${describeRequest(waiting.request)}` : ""}`));
      },
    });
    return client;
  }

  /** Sends a request whose reply is one line; resolves with the line (no CRLF). */
  line(request: string | Uint8Array): Promise<string> {
    return this.send(request, "line") as Promise<string>;
  }

  /** Sends get/gets/gat/gats; resolves with the items, or the error line that came instead. */
  retrieve(request: string | Uint8Array): Promise<Retrieval> {
    return this.send(request, "retrieval") as Promise<Retrieval>;
  }

  close(): void {
    this.fail(new Error("connection closed by the client"));
  }

  private send(request: string | Uint8Array, kind: Pending["kind"]): Promise<string | Retrieval> {
    if (this.failure) return Promise.reject(this.failure);
    const promise = new Promise<string | Retrieval>((resolve, reject) => {
      const timer: Timer = setTimeout(() => this.fail(new Error(`no reply within ${this.timeoutMs} ms to ${describeRequest(request)}`)), this.timeoutMs);
      this.pending.push({
        kind,
        request,
        items: [],
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    this.stream!.write(typeof request === "string" ? ascii(request) : request);
    return promise;
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const p of this.pending.splice(0)) p.reject(error);
    this.stream?.end();
  }

  /** Completes as many pending requests as the received bytes allow, in order. */
  private pump(): void {
    while (this.pending.length > 0) {
      const head: Pending = this.pending[0];
      const reply: string | Retrieval | undefined = head.kind === "line" ? this.received.takeLine() : this.takeRetrieval(head.items);
      if (reply === undefined) return;
      this.pending.shift();
      head.resolve(reply);
    }
    if (this.received.length > 0) this.fail(new Error(`unexpected bytes from the server: ${JSON.stringify(latin1(this.received.peek(80)))}`));
  }

  private takeRetrieval(items: Item[]): Retrieval | undefined {
    for (;;) {
      if (this.header === undefined) {
        const line: string | undefined = this.received.takeLine();
        if (line === undefined) return undefined;
        if (line === "END") return { items };
        const match: RegExpExecArray | null = VALUE_LINE.exec(line);
        if (!match) return items.length === 0 ? { error: line } : this.protocolError(line);
        this.header = { key: match[1], flags: Number(match[2]), bytes: Number(match[3]), cas: match[4] === undefined ? undefined : BigInt(match[4]) };
      }
      const { key, flags, bytes, cas } = this.header;
      if (this.received.length < bytes + 2) return undefined;
      const value: Uint8Array = this.received.take(bytes);
      const crlf: Uint8Array = this.received.take(2);
      if (crlf[0] !== 13 || crlf[1] !== 10) return this.protocolError(`data block of ${key} not followed by CRLF`);
      this.header = undefined;
      items.push({ key, flags, value, cas });
    }
  }

  private protocolError(what: string): undefined {
    this.fail(new Error(`malformed retrieval reply: ${JSON.stringify(what.slice(0, 120))}`));
    return undefined;
  }
}

/** A request's first line (escaped, cut at 120 characters) and its size, for error messages. */
export function describeRequest(request: string | Uint8Array): string {
  const text: string = typeof request === "string" ? request : latin1(request.subarray(0, 200));
  const end: number = text.indexOf("\r\n");
  return `${JSON.stringify((end < 0 ? text : text.slice(0, end)).slice(0, 120))} (${request.length} bytes)`;
}
