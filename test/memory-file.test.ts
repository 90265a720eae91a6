/** The memory file against the store in this process: what is saved is what comes back, whatever the policy. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryFileError } from "../src/memory-file/format.ts";
import { restoreMemoryFile } from "../src/memory-file/restore.ts";
import { saveMemoryFile } from "../src/memory-file/save.ts";
import { Clock } from "../src/store/clock.ts";
import { Namespace } from "../src/store/item.ts";
import type { EvictionName } from "../src/store/policy.ts";
import { Store, StoreMode } from "../src/store/store.ts";

const dir = mkdtempSync(join(tmpdir(), "cacheismo-memfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MB = 1024 * 1024;
const enc = new TextEncoder();

function storeOf(memoryBytes: number, eviction: EvictionName = "lru", clock = new Clock()): Store {
  return new Store({ memoryBytes, maxItemBytes: MB, eviction, clock });
}

function set(store: Store, key: string, value: string, exptime = 0, ns = Namespace.Client): void {
  const k = enc.encode(key);
  const v = enc.encode(value);
  expect(store.store(StoreMode.Set, k, 0, k.length, 0, exptime, v, 0, v.length, 0, ns)).toBe(0);
}

/** Every live item as "namespace:key flags expiry cas length valueHash", next victim first. */
function contents(store: Store): string[] {
  const out: string[] = [];
  store.forEachOldestFirst((it) => {
    const key = new Uint8Array(store.keyLength(it));
    const value = new Uint8Array(store.valueLength(it));
    store.copyKeyTo(it, key, 0);
    store.copyValueTo(it, value, 0);
    out.push([`${store.namespaceOf(it)}:${new TextDecoder().decode(key)}`, store.flagsOf(it), store.expiryOf(it), store.casOf(it), value.length, Bun.hash(value)].join(" "));
  });
  return out;
}

describe.each(["lru", "gdsf"] as const)("--eviction %s", (eviction) => {
  test("restores every item with its namespace, flags, expiry and CAS (LRU: in its order)", () => {
    const clock = new Clock();
    const saved = storeOf(4 * MB, eviction, clock);
    for (let i = 0; i < 500; i++) set(saved, `k${i}`, "v".repeat(i * 7), i % 3 === 0 ? 1000 : 0);
    set(saved, "obj", "lua bytes", 0, Namespace.Objects);
    for (let i = 0; i < 500; i += 5) saved.get(enc.encode(`k${i}`), 0, `k${i}`.length);
    const file = join(dir, `same-${eviction}`);
    saveMemoryFile(saved, file, "test");

    const restored = storeOf(4 * MB, eviction, clock);
    const r = restoreMemoryFile(restored, file);
    expect(r.restored).toBe(501);
    // GDSF frequencies and inflation start over on restore, so only the LRU keeps its order.
    if (eviction === "lru") expect(contents(restored)).toEqual(contents(saved));
    else expect(contents(restored).toSorted()).toEqual(contents(saved).toSorted());
    restored.checkInvariants();
    expect(restored.counters.totalItems).toBe(0);
  });
});

test("the CAS counter continues above every restored CAS", () => {
  const saved = storeOf(MB);
  for (let i = 0; i < 50; i++) set(saved, `k${i}`, "x");
  const file = join(dir, "cas");
  saveMemoryFile(saved, file, "test");
  const restored = storeOf(MB);
  restoreMemoryFile(restored, file);
  set(restored, "new", "y");
  const it = restored.find(enc.encode("new"), 0, 3);
  expect(restored.casOf(it)).toBe(51);
});

test("a fault in a later block leaves the store empty and consistent", () => {
  const saved = storeOf(8 * MB);
  for (let i = 0; i < 40; i++) set(saved, `k${i}`, String(i).repeat(100_000 / String(i).length));
  const file = join(dir, "late-fault");
  saveMemoryFile(saved, file, "test");
  const bytes = readFileSync(file);
  bytes[bytes.length - 10] ^= 0xff;
  writeFileSync(file, bytes);
  const restored = storeOf(8 * MB);
  expect(() => restoreMemoryFile(restored, file)).toThrow(MemoryFileError);
  expect(restored.itemCount).toBe(0);
  restored.checkInvariants();
});
