/** Received bytes waiting to be parsed: appended by socket data events, consumed from the front. */
export class ByteQueue {
  private buf: Uint8Array = new Uint8Array(64 * 1024);
  private start: number = 0;
  private end: number = 0;

  get length(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.buf.length) {
      const live: number = this.length;
      if (live + chunk.length <= this.buf.length / 2) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const grown = new Uint8Array(Math.max(this.buf.length * 2, live + chunk.length));
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** Offset (from the front) of the first CRLF's CR, or -1. */
  private indexOfCrlf(): number {
    for (let i = this.start; ; i++) {
      const lf: number = this.buf.indexOf(10, i);
      if (lf < 0 || lf >= this.end) return -1;
      if (lf > this.start && this.buf[lf - 1] === 13) return lf - 1 - this.start;
      i = lf;
    }
  }

  /** The next line without its CRLF (latin1), or undefined when no complete line is queued. */
  takeLine(): string | undefined {
    const cr: number = this.indexOfCrlf();
    if (cr < 0) return undefined;
    const line: string = latin1(this.buf.subarray(this.start, this.start + cr));
    this.start += cr + 2;
    return line;
  }

  /** A copy of the first n bytes, removed from the queue. */
  take(n: number): Uint8Array {
    const out: Uint8Array = this.buf.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }

  /** The first n bytes, still queued (valid until the next push). */
  peek(n: number): Uint8Array {
    return this.buf.subarray(this.start, this.start + n);
  }

  skip(n: number): void {
    this.start += n;
  }
}

/** Bytes as a string of code points 0-255 (TextDecoder's "latin1" is windows-1252, which is not). */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}

export function ascii(text: string): Uint8Array {
  return Buffer.from(text, "latin1");
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n: number = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at: number = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
