/**
 * Byte copies between typed arrays without making a view. `dst.set(src.subarray(a, b), at)`
 * allocates a view first, and a view of a SharedArrayBuffer-backed array (the arena) costs about
 * 70 ns: more than copying 4 KB. Buffer#copy takes the offsets itself and accepts any Uint8Array.
 */
const bufferCopy = Buffer.prototype.copy as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number;

/** Below this many bytes a loop copies faster than the call into Buffer#copy (19 ns against 40 for 9 bytes, even at 24). */
const LOOP_COPY_MAX = 16;

/** Copies src[srcStart, srcEnd) into dst at dstStart. The ranges must not overlap. */
export function copyBytes(src: Uint8Array, srcStart: number, srcEnd: number, dst: Uint8Array, dstStart: number): void {
  if (srcEnd - srcStart <= LOOP_COPY_MAX) {
    for (let i = srcStart; i < srcEnd; i++) dst[dstStart++] = src[i];
    return;
  }
  bufferCopy.call(src, dst, dstStart, srcStart, srcEnd);
}

/** The little-endian 32-bit word at bytes[at, at + 4), as a signed Int32 (`>>> 0` for unsigned). */
export function readInt32LE(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
}
