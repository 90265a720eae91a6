/**
 * A client connection's replies in request order while forwarded requests are out: each forwarded
 * request opens a slot at the end of the connection's output buffer, local replies are appended
 * behind it as usual, and the slot is filled in place (the bytes after it move up) when its reply
 * comes, whatever the order replies come in. Only the bytes before the first open slot may be sent.
 */
import { copyBytes } from "../bytes.ts";
import type { OutputBuffer } from "../protocol/output.ts";

export class ReplyQueue {
  /** Open slots in request order: their ids and where in `out` each one's reply goes. */
  private readonly ids: number[] = [];
  private readonly positions: number[] = [];
  private nextId = 0;

  constructor(private readonly out: OutputBuffer) {}

  /** Open slots. */
  get size(): number {
    return this.ids.length;
  }

  /** Bytes of `out` that may be sent: everything before the first open slot. */
  get sendable(): number {
    return this.positions.length === 0 ? this.out.length : this.positions[0];
  }

  /** Opens a slot at the end of the output; returns its id. */
  open(): number {
    const id = this.nextId++;
    this.ids.push(id);
    this.positions.push(this.out.length);
    return id;
  }

  /** Puts src[from, to) where slot `id` is and closes it. */
  fill(id: number, src: Uint8Array, from: number, to: number): void {
    const i = this.ids.indexOf(id);
    if (i < 0) throw new Error(`reply slot ${id} is not open`);
    const out = this.out;
    const at = this.positions[i];
    const len = to - from;
    out.reserve(len);
    if (at < out.length) out.bytes.copyWithin(at + len, at, out.length);
    copyBytes(src, from, to, out.bytes, at);
    out.length += len;
    this.ids.splice(i, 1);
    this.positions.splice(i, 1);
    for (let j = i; j < this.positions.length; j++) this.positions[j] += len;
  }

  /** The first n bytes of `out` were sent and dropped: slots move with the bytes after them. */
  consumed(n: number): void {
    for (let j = 0; j < this.positions.length; j++) this.positions[j] -= n;
  }
}
