/**
 * One server's side of the differential test: its reply stream cut into replies, each kept as
 * the exact bytes received except that every cas unique on a VALUE line is replaced by its
 * canonical id, "#<n>", numbered in order of first appearance on this server. Two servers that
 * behave alike produce identical canonical replies.
 */
import { ByteQueue, latin1 } from "./bytes.ts";
import type { Observed } from "./differential-ops.ts";

export interface Reply extends Observed {
  /** The reply as received, cas uniques as "#<canonical id>". */
  readonly text: string;
}

const VALUE_LINE: RegExp = /^VALUE ([^ ]+) (\d+) (\d+)(?: (\d+))?$/;

/** This server's cas uniques <-> canonical ids. */
export class CasIds {
  private readonly ids = new Map<string, number>();
  private readonly uniques: string[] = [];

  canonical(unique: string): number {
    let id: number | undefined = this.ids.get(unique);
    if (id === undefined) {
      this.uniques.push(unique);
      id = this.uniques.length;
      this.ids.set(unique, id);
    }
    return id;
  }

  unique(id: number): string {
    const unique: string | undefined = this.uniques[id - 1];
    if (unique === undefined) throw new Error(`cas id #${id} was never seen from this server`);
    return unique;
  }
}

export class ReplyReader {
  readonly cas = new CasIds();
  private readonly queue = new ByteQueue();
  /** A retrieval reply being assembled. */
  private parts: string[] = [];
  private values: { key: string; value: string; casId: number | undefined }[] = [];
  /** The VALUE line taken whose data block has not fully arrived: its text and data length. */
  private header: { line: string; key: string; length: number; casId: number | undefined } | undefined;

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
  }

  get buffered(): number {
    return this.queue.length;
  }

  /** What is buffered and not yet taken, for messages. */
  leftover(): string {
    return latin1(this.queue.peek(Math.min(this.queue.length, 300)));
  }

  /** The next reply when it has fully arrived: one line, or VALUE blocks up to a line that is not one. */
  take(shape: "line" | "retrieval"): Reply | undefined {
    if (shape === "line") {
      const line: string | undefined = this.queue.takeLine();
      return line === undefined ? undefined : { text: `${line}\r\n`, line, values: [] };
    }
    for (;;) {
      if (this.header === undefined) {
        const line: string | undefined = this.queue.takeLine();
        if (line === undefined) return undefined;
        const match: RegExpExecArray | null = VALUE_LINE.exec(line);
        if (match === null) return this.finish(line);
        const casId: number | undefined = match[4] === undefined ? undefined : this.cas.canonical(match[4]);
        const canonical: string = casId === undefined ? line : `VALUE ${match[1]} ${match[2]} ${match[3]} #${casId}`;
        this.header = { line: canonical, key: match[1], length: Number(match[3]), casId };
      }
      const { line, key, length, casId } = this.header;
      if (this.queue.length < length + 2) return undefined;
      const block: string = latin1(this.queue.take(length + 2));
      this.parts.push(`${line}\r\n`, block);
      this.values.push({ key, value: block.slice(0, length), casId });
      this.header = undefined;
    }
  }

  private finish(line: string): Reply {
    this.parts.push(`${line}\r\n`);
    const reply: Reply = { text: this.parts.join(""), line, values: this.values };
    this.parts = [];
    this.values = [];
    return reply;
  }
}
