/**
 * Writes the store's live items to a memory file, least recently used first, streaming from the
 * arena through one block buffer: PATH.tmp is written, synced and renamed to PATH, so PATH is
 * always a whole file or absent. The caller holds the store still (workers drained, lock held).
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { Store } from "../store/store.ts";
import { BLOCK_HEADER_BYTES, BLOCK_TARGET_BYTES, encodeHeader, HEADER_BYTES, RECORD_HEADER_BYTES, recordKeyWord } from "./format.ts";

export interface SaveResult {
  readonly items: number;
  readonly fileBytes: number;
}

/** Throws (after removing PATH.tmp) when the file cannot be written. */
export function saveMemoryFile(store: Store, path: string, version: string): SaveResult {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  let open = true;
  try {
    const writer = new BlockWriter(fd);
    store.forEachOldestFirst((it) => writer.add(store, it));
    writer.finishBlock();
    const header = { items: writer.items, fileBytes: writer.at, writerMemoryBytes: store.limitBytes, writtenAt: store.clock.now, version };
    writeAll(fd, encodeHeader(header), 0, HEADER_BYTES, 0);
    fsyncSync(fd);
    open = false;
    closeSync(fd);
    renameSync(tmp, path);
    syncDirectory(dirname(path));
    return { items: writer.items, fileBytes: writer.at };
  } catch (e) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Packs records into blocks and writes each one whole, after the header's place. */
class BlockWriter {
  private buf = new Uint8Array(BLOCK_TARGET_BYTES);
  private view = new DataView(this.buf.buffer);
  /** Bytes of the block being filled, its header included. */
  private used = BLOCK_HEADER_BYTES;
  private blockItems = 0;
  items = 0;
  /** File offset of the next block. */
  at = HEADER_BYTES;

  constructor(private readonly fd: number) {}

  add(store: Store, it: number): void {
    const keyLen = store.keyLength(it);
    const valueLen = store.valueLength(it);
    const bytes = RECORD_HEADER_BYTES + keyLen + valueLen;
    if (this.used + bytes > this.buf.length && this.blockItems > 0) this.finishBlock();
    if (BLOCK_HEADER_BYTES + bytes > this.buf.length) {
      this.buf = new Uint8Array(BLOCK_HEADER_BYTES + bytes);
      this.view = new DataView(this.buf.buffer);
    }
    const view = this.view;
    const at = this.used;
    const cas = store.casOf(it);
    view.setUint32(at, recordKeyWord(keyLen, store.namespaceOf(it)), true);
    view.setUint32(at + 4, store.flagsOf(it), true);
    view.setUint32(at + 8, store.expiryOf(it), true);
    view.setUint32(at + 12, valueLen, true);
    view.setUint32(at + 16, cas >>> 0, true);
    view.setUint32(at + 20, Math.floor(cas / 0x100000000), true);
    store.copyKeyTo(it, this.buf, at + RECORD_HEADER_BYTES);
    store.copyValueTo(it, this.buf, at + RECORD_HEADER_BYTES + keyLen);
    this.used += bytes;
    this.blockItems++;
    this.items++;
  }

  finishBlock(): void {
    if (this.blockItems === 0) return;
    const payload = this.buf.subarray(BLOCK_HEADER_BYTES, this.used);
    this.view.setUint32(0, payload.length, true);
    this.view.setUint32(4, this.blockItems, true);
    this.view.setUint32(8, Bun.hash.crc32(payload), true);
    writeAll(this.fd, this.buf, 0, this.used, this.at);
    this.at += this.used;
    this.used = BLOCK_HEADER_BYTES;
    this.blockItems = 0;
  }
}

function writeAll(fd: number, buf: Uint8Array, off: number, len: number, position: number): void {
  while (len > 0) {
    const n = writeSync(fd, buf, off, len, position);
    off += n;
    len -= n;
    position += n;
  }
}

/** Makes the rename itself durable. */
function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
