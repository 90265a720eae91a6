/**
 * Objects as append logs (see core.lua): read what an object gained since a version this state
 * decoded, append a change, store a compacted object with room to grow. The store's own fast
 * paths (src/store/object-access.ts) append in place; a store without them (a test's Map) gets
 * the same answers from get/version/set, copying the object.
 */
import type { LogRead, LogState, ObjectStoreAccess } from "./store-access.ts";

export interface ObjectLogs {
  read(key: string, version: number, length: number): LogRead | null;
  append(key: string, version: number, length: number, bytes: Uint8Array): LogState | null | 0;
  store(key: string, data: Uint8Array): LogState | 0;
}

export function objectLogs(store: ObjectStoreAccess): ObjectLogs {
  if (store.readLog && store.appendLog && store.storeLog) {
    return { read: store.readLog.bind(store), append: store.appendLog.bind(store), store: store.storeLog.bind(store) };
  }
  return {
    read(key, version, length) {
      const current = store.version(key);
      const item = current === null ? null : store.get(key);
      if (current === null || item === null) return null;
      const data = item.data;
      if (current === version && data.length >= length) return { version, length: data.length, from: length, bytes: data.subarray(length) };
      return { version: current, length: data.length, from: 0, bytes: data };
    },
    append(key, version, length, bytes) {
      const current = store.version(key);
      const item = current === null ? null : store.get(key);
      if (item === null || current !== version || item.data.length !== length) return null;
      const data = new Uint8Array(length + bytes.length);
      data.set(item.data, 0);
      data.set(bytes, length);
      const stored = store.set(key, data, 0, 0);
      return stored === 0 ? 0 : { version: stored, length: data.length };
    },
    store(key, data) {
      const stored = store.set(key, data, 0, 0);
      return stored === 0 ? 0 : { version: stored, length: data.length };
    },
  };
}
