/**
 * --memory-file at the process's two edges, with their log lines: restore before the port opens
 * (then remove the file, so that a crash later never brings back this older cache), save after
 * the drain. Neither throws: a file that cannot be read or written is logged and the process
 * goes on (starts empty, exits as it would have).
 */
import { existsSync, rmSync } from "node:fs";
import type { Logger } from "../log.ts";
import type { Store } from "../store/store.ts";
import { VERSION } from "../version.ts";
import { restoreMemoryFile } from "./restore.ts";
import { saveMemoryFile } from "./save.ts";

export function restoreAtStart(path: string, store: Store, log: Logger): void {
  if (!existsSync(path)) {
    log.info("no memory file; starting empty", { file: path });
    return;
  }
  const startedMs = performance.now();
  try {
    const r = store.lock.hold(() => restoreMemoryFile(store, path));
    log.info("restored the memory file", {
      file: path,
      items: r.restored,
      kept: store.itemCount,
      expired: r.expired,
      too_large: r.tooLarge,
      bytes: r.header.fileBytes,
      ms: Math.round(performance.now() - startedMs),
      written_by: r.header.version,
      written_at: r.header.writtenAt,
    });
  } catch (e) {
    log.error("memory file not restored; starting empty", { file: path, reason: (e as Error).message });
  }
  try {
    rmSync(path, { force: true });
  } catch (e) {
    log.error("cannot remove the memory file after reading it", { file: path, error: (e as Error).message });
  }
}

export function saveAtStop(path: string, store: Store, log: Logger): void {
  const startedMs = performance.now();
  try {
    const r = store.lock.hold(() => saveMemoryFile(store, path, VERSION));
    log.info("saved the memory file", { file: path, items: r.items, bytes: r.fileBytes, ms: Math.round(performance.now() - startedMs) });
  } catch (e) {
    log.error("cannot save the memory file; the cache is lost", { file: path, error: (e as Error).message });
  }
}
