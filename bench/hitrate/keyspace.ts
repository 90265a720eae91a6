/**
 * Keys and their values. Every key has a fixed value size; its value is a slice of a seeded
 * random "tape" at an offset derived from the key's bytes and size. So a hit can be checked
 * byte for byte without storing values, and another key's value, a value of another size or a
 * damaged value does not pass (two keys share an offset only by a 1-in-2^20 chance, and then
 * still need the same size to be confused).
 */
import { Prng } from "./prng.ts";

const TAPE_OFFSETS = 1 << 20;

export class Keyspace {
  readonly count: number;
  /** Every key has this many bytes (fixed width keeps key cost out of the comparison). */
  readonly keyBytes: number;
  /** Value bytes per key. */
  readonly sizes: Int32Array;
  /** TTL in seconds each key is stored with (0: none). */
  readonly ttls: Int32Array;
  private readonly keyTable: Buffer;
  private readonly offsets: Int32Array;
  private readonly tape: Buffer;

  /**
   * `names[g]` is the key text of key g (all the same length, ASCII); `sizes[g]` its value size.
   * `seed` picks the tape contents; `ttls[g]` is key g's TTL (default none).
   */
  constructor(names: (g: number) => string, sizes: Int32Array, seed: number, ttls = new Int32Array(sizes.length)) {
    this.count = sizes.length;
    this.sizes = sizes;
    this.ttls = ttls;
    this.keyBytes = names(0).length;
    this.keyTable = Buffer.allocUnsafe(this.count * this.keyBytes);
    this.offsets = new Int32Array(this.count);
    let maxSize = 0;
    for (let g = 0; g < this.count; g++) {
      const name = names(g);
      if (name.length !== this.keyBytes) throw new Error(`key ${JSON.stringify(name)} is not ${this.keyBytes} bytes`);
      this.keyTable.write(name, g * this.keyBytes, "latin1");
      this.offsets[g] = valueOffset(this.key(g), sizes[g]);
      if (sizes[g] > maxSize) maxSize = sizes[g];
    }
    this.tape = Buffer.allocUnsafe(TAPE_OFFSETS + maxSize);
    new Prng(seed).fill(this.tape);
  }

  key(g: number): Buffer {
    return this.keyTable.subarray(g * this.keyBytes, (g + 1) * this.keyBytes);
  }

  /** The value key g must hold (a view: do not modify). */
  value(g: number): Buffer {
    return this.tape.subarray(this.offsets[g], this.offsets[g] + this.sizes[g]);
  }
}

/** FNV-1a of the key, mixed with the size, reduced to a tape offset. */
function valueOffset(key: Uint8Array, size: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i], 0x01000193);
  h ^= Math.imul(size, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) & (TAPE_OFFSETS - 1);
}
