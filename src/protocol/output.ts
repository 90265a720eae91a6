import { copyBytes } from "../bytes.ts";
import { neverInline } from "../jit.ts";

/**
 * A connection's outgoing bytes: one growable buffer, filled by every reply of a data event and
 * handed to the socket in one write (or one per 256 KiB of replies: text.ts OUTPUT_WRITE_BYTES).
 * What the socket does not take stays here until `drain`.
 */
export class OutputBuffer {
  bytes: Uint8Array;
  length = 0;

  constructor(initialBytes = 16 * 1024) {
    this.bytes = new Uint8Array(initialBytes);
  }

  /** Makes room for n more bytes. */
  reserve(n: number): void {
    const need = this.length + n;
    if (need > this.bytes.length) this.grow(need);
  }

  private grow(need: number): void {
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    const grown = new Uint8Array(size);
    copyBytes(this.bytes, 0, this.length, grown, 0);
    this.bytes = grown;
  }

  /** Appends a pre-encoded constant. */
  put(constant: Uint8Array): void {
    const len = constant.length;
    this.reserve(len);
    const dst = this.bytes;
    let at = this.length;
    if (len <= 16) {
      // Short replies (END, STORED, VALUE ...) copy faster byte by byte than through set().
      for (let i = 0; i < len; i++) dst[at++] = constant[i];
    } else dst.set(constant, at);
    this.length += len;
  }

  putBytes(src: Uint8Array, off: number, len: number): void {
    this.reserve(len);
    const dst = this.bytes;
    let at = this.length;
    if (len <= 32) {
      for (let i = 0; i < len; i++) dst[at++] = src[off + i];
    } else copyBytes(src, off, off + len, dst, at);
    this.length += len;
  }

  putByte(b: number): void {
    this.reserve(1);
    this.bytes[this.length++] = b;
  }

  /** Appends a non-negative integer below 2^53 in decimal, without making a string. */
  putDecimal(n: number): void {
    this.reserve(20);
    const dst = this.bytes;
    if (n < 10) {
      dst[this.length++] = 48 + n;
      return;
    }
    let digits = 0;
    for (let v = n; v >= 1; v = Math.floor(v / 10)) digits++;
    let at = this.length + digits;
    this.length = at;
    for (let v = n; v >= 1; v = Math.floor(v / 10)) dst[--at] = 48 + (v % 10);
  }

  putAscii(text: string): void {
    this.reserve(text.length);
    for (let i = 0; i < text.length; i++) this.bytes[this.length++] = text.charCodeAt(i) & 0xff;
  }

  /** Drops the first n bytes (they were written to the socket). */
  consume(n: number): void {
    if (n >= this.length) {
      this.length = 0;
      return;
    }
    this.bytes.copyWithin(0, n, this.length);
    this.length -= n;
  }
}

// A reply writer reserves room several times (each put does): with the growth inlined at each,
// `writeValue` was the largest optimizing compile under large values (9.5 KB of machine code).
neverInline(OutputBuffer.prototype["grow"]);
