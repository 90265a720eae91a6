/**
 * Reads a memory file back into an empty store, block by block: each block is checked whole
 * (checksum, every record's bounds, its item count) before any of its items is stored, and any
 * fault anywhere in the file empties the store again, so a start is either empty or complete.
 * Records come least recently used first and each is stored as the most recent, so the LRU
 * order is the writer's and, with a smaller -m, eviction keeps the most recent items.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { Namespace } from "../store/item.ts";
import type { Store } from "../store/store.ts";
import {
  BLOCK_HEADER_BYTES,
  BLOCK_TARGET_BYTES,
  decodeHeader,
  type FileHeader,
  HEADER_BYTES,
  MemoryFileError,
  RECORD_HEADER_BYTES,
  recordKeyLength,
} from "./format.ts";

export interface RestoreResult {
  readonly header: FileHeader;
  /** Items put back. */
  readonly restored: number;
  /** Items whose expiry passed while the process was down. */
  readonly expired: number;
  /** Items larger than this process's -I or arena. */
  readonly tooLarge: number;
}

/** Throws MemoryFileError (the store left empty) when the file is not whole and valid. */
export function restoreMemoryFile(store: Store, path: string): RestoreResult {
  const fd = openSync(path, "r");
  try {
    return readFile(store, fd);
  } catch (e) {
    store.flushAll();
    throw e;
  } finally {
    closeSync(fd);
    // Counters start from zero, as after any start: evictions made while restoring into a smaller -m are not traffic.
    store.counters.evictions = 0;
    store.counters.reclaimed = 0;
    store.counters.totalItems = 0;
  }
}

function readFile(store: Store, fd: number): RestoreResult {
  const size = fstatSync(fd).size;
  if (size < HEADER_BYTES) throw new MemoryFileError(`truncated: ${size} bytes, shorter than the header`);
  const header = decodeHeader(readExactly(fd, new Uint8Array(HEADER_BYTES), HEADER_BYTES, 0));
  if (size !== header.fileBytes) throw new MemoryFileError(`truncated or extended: ${size} bytes, the header says ${header.fileBytes}`);
  let buf = new Uint8Array(BLOCK_TARGET_BYTES);
  const blockHeader = new Uint8Array(BLOCK_HEADER_BYTES);
  const blockView = new DataView(blockHeader.buffer);
  const result = { header, restored: 0, expired: 0, tooLarge: 0 };
  let items = 0;
  for (let at = HEADER_BYTES; at < size; ) {
    if (size - at < BLOCK_HEADER_BYTES) throw new MemoryFileError(`truncated block header at offset ${at}`);
    readExactly(fd, blockHeader, BLOCK_HEADER_BYTES, at);
    const payloadBytes = blockView.getUint32(0, true);
    const count = blockView.getUint32(4, true);
    at += BLOCK_HEADER_BYTES;
    if (payloadBytes > size - at) throw new MemoryFileError(`block at offset ${at - BLOCK_HEADER_BYTES} runs past the end of the file`);
    if (buf.length < payloadBytes) buf = new Uint8Array(payloadBytes);
    const payload = readExactly(fd, buf, payloadBytes, at);
    if (Bun.hash.crc32(payload) !== blockView.getUint32(8, true)) throw new MemoryFileError(`block checksum mismatch at offset ${at - BLOCK_HEADER_BYTES}`);
    checkRecords(payload, count, at);
    storeRecords(store, payload, result);
    items += count;
    at += payloadBytes;
  }
  if (items !== header.items) throw new MemoryFileError(`${items} items in the blocks, the header says ${header.items}`);
  return result;
}

/** Throws unless the payload is exactly `count` well-formed records. */
function checkRecords(payload: Uint8Array, count: number, fileOffset: number): void {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (payload.length - at < RECORD_HEADER_BYTES) throw new MemoryFileError(`block at offset ${fileOffset} ends inside record ${i}`);
    const keyLen = recordKeyLength(view.getUint32(at, true));
    if (keyLen < 0) throw new MemoryFileError(`bad key length in record ${i} of the block at offset ${fileOffset}`);
    at += RECORD_HEADER_BYTES + keyLen + view.getUint32(at + 12, true);
    if (at > payload.length) throw new MemoryFileError(`record ${i} runs past its block at offset ${fileOffset}`);
  }
  if (at !== payload.length) throw new MemoryFileError(`block at offset ${fileOffset} holds more than its ${count} records`);
}

/** Stores the records of a checked payload, skipping the expired and those that cannot fit. */
function storeRecords(store: Store, payload: Uint8Array, result: { restored: number; expired: number; tooLarge: number }): void {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const now = store.clock.now;
  for (let at = 0; at < payload.length; ) {
    const word = view.getUint32(at, true);
    const keyLen = recordKeyLength(word);
    const flags = view.getUint32(at + 4, true);
    const expiry = view.getUint32(at + 8, true);
    const valueLen = view.getUint32(at + 12, true);
    const cas = view.getUint32(at + 20, true) * 0x100000000 + view.getUint32(at + 16, true);
    const keyAt = at + RECORD_HEADER_BYTES;
    at = keyAt + keyLen + valueLen;
    if (expiry !== 0 && expiry <= now) result.expired++;
    else if (store.restoreItem(payload, keyAt, keyLen, (word >>> 16) as Namespace, flags, expiry, cas, payload, keyAt + keyLen, valueLen)) result.restored++;
    else result.tooLarge++;
  }
}

/** Reads len bytes at position into buf; a short read means the file changed under us. */
function readExactly(fd: number, buf: Uint8Array, len: number, position: number): Uint8Array {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, position + got);
    if (n === 0) throw new MemoryFileError(`file ended at offset ${position + got} while reading`);
    got += n;
  }
  return buf.subarray(0, len);
}
