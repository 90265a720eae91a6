/**
 * Checks that whatever a fuzzed connection receives is a well-formed memcached reply stream:
 * every line is a reply memcached can send, and every VALUE line is followed by exactly the
 * announced number of bytes and CRLF. The first malformed reply ends checking of that stream
 * (it can no longer be framed) and is kept as an example.
 */
import { ByteQueue, latin1 } from "./bytes.ts";

const SIMPLE: ReadonlySet<string> = new Set(["STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED", "END", "OK", "RESET", "ERROR"]);
const VALUE_LINE: RegExp = /^VALUE [^ ]+ (\d{1,10}) (\d{1,10})(?: \d{1,20})?$/;
const OTHER_LINES: readonly [ReplyKind, RegExp][] = [
  ["client_error", /^CLIENT_ERROR [ -~]+$/],
  ["server_error", /^SERVER_ERROR [ -~]+$/],
  ["number", /^\d{1,20}$/],
  ["version", /^VERSION [!-~]+$/],
  ["stat", /^STAT [!-~]+ [ -~]*$/],
];

export type ReplyKind = "simple" | "value" | "client_error" | "server_error" | "number" | "version" | "stat";

export class ReplyChecker {
  readonly counts: Record<ReplyKind, number> = { simple: 0, value: 0, client_error: 0, server_error: 0, number: 0, version: 0, stat: 0 };
  /** Set at the first malformed reply; nothing after it is checked. */
  malformed: string | undefined;
  private readonly queue = new ByteQueue();
  /** Bytes (data block + CRLF) still owed by the last VALUE line. */
  private owed: number = 0;

  push(chunk: Uint8Array): void {
    if (this.malformed !== undefined) return;
    this.queue.push(chunk);
    this.check();
  }

  private check(): void {
    for (;;) {
      if (this.owed > 0) {
        if (this.queue.length < this.owed) return;
        const tail: Uint8Array = this.queue.peek(this.owed).subarray(this.owed - 2);
        if (tail[0] !== 13 || tail[1] !== 10) return this.reject("a data block not followed by CRLF");
        this.queue.skip(this.owed);
        this.owed = 0;
      }
      const text: string | undefined = this.queue.takeLine();
      if (text === undefined) return;
      const kind: ReplyKind | undefined = classify(text);
      if (kind === undefined) return this.reject(text);
      this.counts[kind]++;
      if (kind === "value") this.owed = Number(VALUE_LINE.exec(text)![2]) + 2;
    }
  }

  private reject(what: string): void {
    this.malformed = JSON.stringify(what.slice(0, 200));
  }

  /** Unparsed bytes, for error messages. */
  leftover(): string {
    return latin1(this.queue.peek(Math.min(this.queue.length, 200)));
  }
}

function classify(line: string): ReplyKind | undefined {
  if (SIMPLE.has(line)) return "simple";
  if (line.startsWith("VALUE ")) {
    const m: RegExpExecArray | null = VALUE_LINE.exec(line);
    return m !== null && Number(m[1]) <= 0xffffffff ? "value" : undefined;
  }
  for (const [kind, pattern] of OTHER_LINES) if (pattern.test(line)) return kind;
  return undefined;
}
