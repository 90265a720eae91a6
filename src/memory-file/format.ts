/**
 * The memory file's layout (--memory-file): what a graceful stop writes and the next start reads.
 * Little-endian throughout.
 *
 *   header, HEADER_BYTES:
 *     0   magic "cacheismo memory\n" padded to 24 bytes
 *     24  u32 format version          28  u32 header bytes
 *     32  u64 items                   40  u64 file bytes (header and every block)
 *     48  u64 the writer's -m, bytes  56  u64 written at, unix seconds
 *     64  u32 length of the writer's version, then its bytes (at most VERSION_MAX_BYTES)
 *     124 u32 crc32 of bytes 0..124
 *   blocks, each: u32 payload bytes, u32 items, u32 crc32 of the payload, then the payload,
 *   records end to end, least recently used first:
 *     u32 key length | namespace << 16, u32 flags, u32 absolute expiry (0 = never),
 *     u32 value length, u32 CAS low, u32 CAS high, the key, the value
 */
import { KEY_LEN_MASK, KEY_MAX_BYTES, Namespace } from "../store/item.ts";

export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 128;
export const BLOCK_HEADER_BYTES = 12;
export const RECORD_HEADER_BYTES = 24;
/** Payload a block is cut at (a larger item gets a block of its own). */
export const BLOCK_TARGET_BYTES = 1024 * 1024;
const MAGIC = new TextEncoder().encode("cacheismo memory\n");
const MAGIC_BYTES = 24;
const VERSION_MAX_BYTES = 56;
const CRC_AT = 124;

/** Why a memory file cannot be restored (logged as the reason). */
export class MemoryFileError extends Error {}

export interface FileHeader {
  readonly items: number;
  readonly fileBytes: number;
  readonly writerMemoryBytes: number;
  readonly writtenAt: number;
  /** The writing cacheismo's version. */
  readonly version: string;
}

export function encodeHeader(h: FileHeader): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(24, FORMAT_VERSION, true);
  view.setUint32(28, HEADER_BYTES, true);
  view.setBigUint64(32, BigInt(h.items), true);
  view.setBigUint64(40, BigInt(h.fileBytes), true);
  view.setBigUint64(48, BigInt(h.writerMemoryBytes), true);
  view.setBigUint64(56, BigInt(h.writtenAt), true);
  const version = new TextEncoder().encode(h.version).subarray(0, VERSION_MAX_BYTES);
  view.setUint32(64, version.length, true);
  bytes.set(version, 68);
  view.setUint32(CRC_AT, Bun.hash.crc32(bytes.subarray(0, CRC_AT)), true);
  return bytes;
}

/** The header in `bytes` (HEADER_BYTES long), or MemoryFileError saying what is wrong with it. */
export function decodeHeader(bytes: Uint8Array): FileHeader {
  for (let i = 0; i < MAGIC_BYTES; i++) {
    if (bytes[i] !== (MAGIC[i] ?? 0)) throw new MemoryFileError("not a cacheismo memory file (bad magic)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const format = view.getUint32(24, true);
  if (format !== FORMAT_VERSION) {
    throw new MemoryFileError(`memory file format version ${format}; this cacheismo reads version ${FORMAT_VERSION}`);
  }
  if (view.getUint32(CRC_AT, true) !== Bun.hash.crc32(bytes.subarray(0, CRC_AT))) throw new MemoryFileError("header checksum mismatch");
  const versionLen = view.getUint32(64, true);
  if (view.getUint32(28, true) !== HEADER_BYTES || versionLen > VERSION_MAX_BYTES) throw new MemoryFileError("malformed header");
  return {
    items: Number(view.getBigUint64(32, true)),
    fileBytes: Number(view.getBigUint64(40, true)),
    writerMemoryBytes: Number(view.getBigUint64(48, true)),
    writtenAt: Number(view.getBigUint64(56, true)),
    version: new TextDecoder().decode(bytes.subarray(68, 68 + versionLen)),
  };
}

/** A record's first word: the key length with its namespace. */
export function recordKeyWord(keyLen: number, ns: Namespace): number {
  return keyLen | (ns << 16);
}

/** The key length of a record's first word, or -1 when the word is not one a writer makes. */
export function recordKeyLength(word: number): number {
  const len = word & KEY_LEN_MASK;
  const ns = word >>> 16;
  if (len === 0 || len > KEY_MAX_BYTES || (ns !== Namespace.Client && ns !== Namespace.Objects)) return -1;
  return len;
}
