/**
 * Reads without the store lock (SharedLock.readBegin/readValid around Store.peek): a read is
 * trusted only when no lock holder ran during it, only hits that change nothing are served that
 * way, and a torn walk cannot hang or run away. The races themselves: threads-store-race.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { Clock } from "../src/store/clock.ts";
import { F_HASH, F_HASH_NEXT } from "../src/store/item.ts";
import { SharedLock } from "../src/store/lock.ts";
import { PEEK_NEEDS_LOCK, Store, StoreMode } from "../src/store/store.ts";

const enc = new TextEncoder();
const MB = 1024 * 1024;

function makeStore(memoryBytes = MB): Store {
  return new Store({ memoryBytes, maxItemBytes: MB, clock: new Clock(), eviction: "lru" });
}

function set(store: Store, key: string, value: string): void {
  const k = enc.encode(key);
  const v = enc.encode(value);
  store.store(StoreMode.Set, k, 0, k.length, 0, 0, v, 0, v.length, 0);
}

const peek = (store: Store, key: string): number => store.peek(enc.encode(key), 0, key.length);
const get = (store: Store, key: string): number => store.get(enc.encode(key), 0, key.length);

describe("SharedLock read side", () => {
  test("a read is valid only if the lock was free at its start and no holder ran during it", () => {
    const lock = new SharedLock();
    const quiet = lock.readBegin();
    expect(quiet).not.toBe(-1);
    expect(lock.readValid(quiet)).toBe(true);

    const interrupted = lock.readBegin();
    lock.hold(() => {});
    expect(lock.readValid(interrupted)).toBe(false);

    const overtaken = lock.readBegin();
    lock.lock();
    expect(lock.readBegin()).toBe(-1);
    expect(lock.readValid(overtaken)).toBe(false); // a holder is at work right now
    lock.unlock();
  });
});

describe("Store.peek", () => {
  test("serves only hits that write nothing: a fresh item needs the lock, a fetched one at the LRU head does not", () => {
    const store = makeStore();
    set(store, "k", "value");
    expect(peek(store, "k")).toBe(PEEK_NEEDS_LOCK); // first fetch marks the item
    const it = get(store, "k");
    expect(peek(store, "k")).toBe(it);
    expect(peek(store, "missing")).toBe(0);
  });

  test("an item far from the LRU head needs the lock (the hit moves it)", () => {
    const store = makeStore();
    set(store, "old", "x");
    get(store, "old");
    for (let i = 0; i < 100; i++) set(store, `new${i}`, "y");
    expect(peek(store, "old")).toBe(PEEK_NEEDS_LOCK);
    get(store, "old");
    expect(peek(store, "old")).not.toBe(PEEK_NEEDS_LOCK);
  });

  test("a peek that found an item needing a bump hands it to the lock holder only if no holder ran since", () => {
    const store = makeStore();
    set(store, "k", "v");
    // Quiet: the item the peek found is bumped under the lock without a second lookup.
    let token = store.lock.readBegin();
    expect(peek(store, "k")).toBe(PEEK_NEEDS_LOCK); // never fetched yet
    const found = store.peekedForBump;
    expect(found).not.toBe(0);
    store.lock.lock();
    expect(store.lock.unchangedSince(token)).toBe(true);
    expect(store.bumpPeeked(found)).toBe(true);
    store.lock.unlock();
    expect(store.wasFetched(found)).toBe(true);
    expect(peek(store, "k")).toBe(found); // fetched and at the LRU head: lock-free from now on

    // Another holder deleted the key between the peek and the lock: the handoff is refused.
    for (let i = 0; i < 100; i++) set(store, `new${i}`, "y");
    token = store.lock.readBegin();
    expect(peek(store, "k")).toBe(PEEK_NEEDS_LOCK); // far from the head now
    expect(store.peekedForBump).toBe(found);
    store.lock.hold(() => store.delete(enc.encode("k"), 0, 1));
    store.lock.lock();
    expect(store.lock.unchangedSince(token)).toBe(false);
    expect(get(store, "k")).toBe(0);
    store.lock.unlock();
    store.checkInvariants();
  });

  test("a peeked item that expired before the lock was taken is not bumped: the full get reclaims it", () => {
    const store = makeStore();
    const k = enc.encode("soon");
    store.store(StoreMode.Set, k, 0, k.length, 0, 10, enc.encode("v"), 0, 1, 0);
    expect(peek(store, "soon")).toBe(PEEK_NEEDS_LOCK);
    const found = store.peekedForBump;
    store.clock.now += 11;
    expect(store.bumpPeeked(found)).toBe(false);
    expect(get(store, "soon")).toBe(0);
    store.checkInvariants();
  });

  test("expired items are left to the locked path, which reclaims them (the peek hands nothing over)", () => {
    const store = makeStore();
    const k = enc.encode("soon");
    store.store(StoreMode.Set, k, 0, k.length, 0, 10, enc.encode("v"), 0, 1, 0);
    get(store, "soon");
    store.clock.now += 11;
    expect(peek(store, "soon")).toBe(PEEK_NEEDS_LOCK);
    expect(store.peekedForBump).toBe(0);
  });

  test("a hash chain that loops (links read half-written) ends the walk instead of hanging it", () => {
    const store = makeStore();
    set(store, "a", "1");
    const it = get(store, "a");
    // As a torn read could see it: the item's hash no longer matches and its link points at itself.
    store.arena.setWord(it, F_HASH, store.arena.getWord(it, F_HASH) ^ 1);
    store.arena.setWord(it, F_HASH_NEXT, it);
    expect(peek(store, "a")).toBe(PEEK_NEEDS_LOCK);
  });
});
