import { describe, expect, test } from "bun:test";
import { heapStats } from "bun:jsc";
import { Clock } from "../src/store/clock.ts";
import { Namespace } from "../src/store/item.ts";
import { CRAWL_ITEMS_PER_ALLOCATION, hashKey, Store, StoreMode, StoreResult } from "../src/store/store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const MB = 1024 * 1024;

function makeStore(memoryBytes = MB, maxItemBytes = MB, eviction: "lru" | "gdsf" = "lru"): Store {
  const clock = new Clock();
  return new Store({ memoryBytes, maxItemBytes, clock, eviction });
}

function set(store: Store, key: string, value: string | Uint8Array, exptime = 0, flags = 0): StoreResult {
  const k = enc.encode(key);
  const v = typeof value === "string" ? enc.encode(value) : value;
  return store.store(StoreMode.Set, k, 0, k.length, flags, exptime, v, 0, v.length, 0);
}

function getBytes(store: Store, key: string): Uint8Array | null {
  const k = enc.encode(key);
  const it = store.get(k, 0, k.length);
  if (it === 0) return null;
  const out = new Uint8Array(store.valueLength(it));
  store.copyValueTo(it, out, 0);
  return out;
}

function get(store: Store, key: string): string | null {
  const v = getBytes(store, key);
  return v === null ? null : dec.decode(v);
}

function has(store: Store, key: string): boolean {
  const k = enc.encode(key);
  return store.find(k, 0, k.length) !== 0;
}

describe("store", () => {
  test("stores and returns values, replacing on set", () => {
    const store = makeStore();
    expect(set(store, "a", "1")).toBe(StoreResult.Stored);
    expect(set(store, "a", "22")).toBe(StoreResult.Stored);
    expect(get(store, "a")).toBe("22");
    expect(store.itemCount).toBe(1);
    store.checkInvariants();
  });

  test("evicts the least recently used item whatever its size", () => {
    // 64 KiB arena: room for a handful of items of mixed sizes.
    const store = makeStore(64 * 1024);
    const sizes: Record<string, number> = { small1: 100, big1: 20000, small2: 50, big2: 30000, small3: 10 };
    for (const [k, n] of Object.entries(sizes)) expect(set(store, k, "x".repeat(n))).toBe(StoreResult.Stored);
    // Touch big1 so it becomes most recent: from the tail the order is now this.
    expect(get(store, "big1")).not.toBeNull();
    const lruOrder = ["small1", "small2", "big2", "small3", "big1"];
    // Each new 12 KB item forces evictions: what is gone must always be the oldest ones.
    for (let i = 0; i < 6; i++) {
      set(store, `new${i}`, "y".repeat(12000));
      const gone = lruOrder.filter((k) => !has(store, k));
      expect(gone).toEqual(lruOrder.slice(0, gone.length));
      store.checkInvariants();
    }
    expect(lruOrder.filter((k) => has(store, k))).toEqual([]);
    expect(store.counters.evictions).toBeGreaterThanOrEqual(5);
  });

  test("frees only as much as the new item needs, oldest first", () => {
    const store = makeStore(64 * 1024);
    for (let i = 0; i < 100; i++) set(store, `k${i}`, "v".repeat(400));
    const held = store.itemCount;
    set(store, "n", "z".repeat(1000));
    // A 1000-byte item needs about two or three 480-byte items gone, not more.
    expect(held + 1 - store.itemCount).toBeLessThanOrEqual(3);
    expect(has(store, "k0")).toBe(held === 100); // the oldest goes first when anything goes
    store.checkInvariants();
  });

  test("an eviction hands the evicted item's block to the new item, freeing what it does not need", () => {
    // 136 items of 480 bytes fill a 64 KiB arena but for 224 bytes: every later set evicts.
    const store = makeStore(64 * 1024);
    for (let i = 0; i < 136; i++) expect(set(store, `k${i}`, "v".repeat(400))).toBe(StoreResult.Stored);
    expect(store.counters.evictions).toBe(0);
    const unitOf = (key: string): number => store.find(enc.encode(key), 0, key.length);
    // Smaller than the victim: it takes the victim's place, the rest of the block is free again.
    const k0 = unitOf("k0");
    expect(set(store, "small", "s".repeat(300))).toBe(StoreResult.Stored);
    expect(unitOf("small")).toBe(k0);
    expect(has(store, "k0")).toBe(false);
    expect(has(store, "k1")).toBe(true);
    store.checkInvariants();
    // The same size: the block is taken whole.
    const k1 = unitOf("k1");
    expect(set(store, "k-same", "w".repeat(399))).toBe(StoreResult.Stored);
    expect(unitOf("k-same")).toBe(k1);
    store.checkInvariants();
    // Larger than any one victim: several go, as before.
    expect(set(store, "large", "L".repeat(1200))).toBe(StoreResult.Stored);
    expect(store.counters.evictions).toBeGreaterThanOrEqual(4);
    store.checkInvariants();
    expect(get(store, "small")).toBe("s".repeat(300));
    expect(get(store, "k-same")).toBe("w".repeat(399));
    expect(get(store, "large")).toBe("L".repeat(1200));
  });

  test("an item costs its header, key and value rounded to 32 bytes", () => {
    const store = makeStore();
    set(store, "key", "x".repeat(100)); // 56 + 3 + 100 = 159 -> 160
    expect(store.bytesUsed).toBe(160);
    set(store, "key2", "");
    expect(store.bytesUsed).toBe(160 + 64);
  });

  test("values spread over several extents when memory is fragmented come back intact", () => {
    const store = makeStore(256 * 1024);
    // Fill with small items, then delete every other one to leave only small holes.
    for (let i = 0; i < 1500; i++) set(store, `s${i}`, "a".repeat(100));
    for (let i = 0; i < 1500; i += 2) {
      const k = enc.encode(`s${i}`);
      store.delete(k, 0, k.length);
    }
    const big = new Uint8Array(50000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
    expect(set(store, "big", big)).toBe(StoreResult.Stored);
    store.checkInvariants();
    expect(getBytes(store, "big")).toEqual(big);
    // Appending across extents keeps every byte too.
    const k = enc.encode("big");
    const tail = enc.encode("TAIL");
    expect(store.store(StoreMode.Append, k, 0, 3, 0, 0, tail, 0, 4, 0)).toBe(StoreResult.Stored);
    const got = getBytes(store, "big")!;
    expect(got.length).toBe(50004);
    expect(got.subarray(0, 50000)).toEqual(big);
    expect(dec.decode(got.subarray(50000))).toBe("TAIL");
    store.checkInvariants();
  });

  test.each(["lru", "gdsf"] as const)("keeps invariants through a long random mix of operations under eviction (%s)", (eviction) => {
    const store = makeStore(128 * 1024, 64 * 1024, eviction);
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const model = new Map<string, string>();
    for (let i = 0; i < 20000; i++) {
      const key = `k${rand(500)}`;
      const op = rand(10);
      if (op < 5) {
        const value = String(i).repeat(1 + rand(2000));
        set(store, key, value);
        model.set(key, value);
      } else if (op < 8) {
        const got = get(store, key);
        // Evicted items may be gone; present items must hold exactly what was stored last.
        if (got !== null) expect(got).toBe(model.get(key)!);
      } else {
        const k = enc.encode(key);
        store.delete(k, 0, k.length);
        model.delete(key);
      }
      if (i % 1000 === 0) store.checkInvariants();
    }
    store.checkInvariants();
  });

  test("cas unique changes on every mutation and guards cas", () => {
    const store = makeStore();
    set(store, "c", "1");
    const k = enc.encode("c");
    const first = store.casOf(store.find(k, 0, 1));
    set(store, "c", "2");
    const second = store.casOf(store.find(k, 0, 1));
    expect(second).not.toBe(first);
    const v = enc.encode("3");
    expect(store.store(StoreMode.Cas, k, 0, 1, 0, 0, v, 0, 1, first)).toBe(StoreResult.Exists);
    expect(store.store(StoreMode.Cas, k, 0, 1, 0, 0, v, 0, 1, second)).toBe(StoreResult.Stored);
    expect(store.store(StoreMode.Cas, enc.encode("zz"), 0, 2, 0, 0, v, 0, 1, second)).toBe(StoreResult.NotFound);
  });

  test("expires relative, absolute and negative exptimes; reclaimed items do not count as evictions", () => {
    const store = makeStore();
    const now = store.clock.now;
    set(store, "rel", "x", 10);
    set(store, "abs", "x", now + 100);
    set(store, "neg", "x", -1);
    set(store, "never", "x", 0);
    expect(has(store, "neg")).toBe(false);
    expect(has(store, "rel")).toBe(true);
    store.clock.now = now + 11;
    expect(has(store, "rel")).toBe(false);
    expect(has(store, "abs")).toBe(true);
    store.clock.now = now + 101;
    expect(has(store, "abs")).toBe(false);
    expect(has(store, "never")).toBe(true);
    expect(store.counters.evictions).toBe(0);
    store.checkInvariants();
  });

  test("an oversize set fails without evicting anything", () => {
    const store = makeStore(64 * 1024, 32 * 1024);
    for (let i = 0; i < 10; i++) set(store, `k${i}`, "v".repeat(1000));
    expect(set(store, "huge", "h".repeat(40 * 1024))).toBe(StoreResult.TooLarge);
    expect(store.itemCount).toBe(10);
    expect(store.counters.evictions).toBe(0);
  });

  test("a million items do not grow the JavaScript heap", () => {
    const store = makeStore(256 * MB);
    Bun.gc(true);
    const before = heapStats().heapSize;
    const key = new Uint8Array(16);
    const value = new Uint8Array(32);
    for (let i = 0; i < 1_000_000; i++) {
      let n = i;
      for (let j = 15; j >= 0; j--) {
        key[j] = 48 + (n % 10);
        n = Math.floor(n / 10);
      }
      store.store(StoreMode.Set, key, 0, 16, 0, 0, value, 0, 32, 0);
    }
    expect(store.itemCount).toBe(1_000_000);
    Bun.gc(true);
    const after = heapStats().heapSize;
    // The hash buckets (a typed array) live outside the JS heap count; allow a little noise.
    expect(after - before).toBeLessThan(8 * MB);
  }, 60000);

  test("gdsf evicts large, rarely read items before small, often read ones", () => {
    const store = makeStore(64 * 1024, 64 * 1024, "gdsf");
    set(store, "big", "b".repeat(20000));
    for (let i = 0; i < 20; i++) set(store, `small${i}`, "s".repeat(100));
    for (let r = 0; r < 3; r++) for (let i = 0; i < 20; i++) get(store, `small${i}`);
    // Under LRU "big" would be the most recent after this read; GDSF still ranks it lowest.
    get(store, "big");
    for (let i = 0; i < 5; i++) set(store, `filler${i}`, "f".repeat(9000));
    expect(has(store, "big")).toBe(false);
    for (let i = 0; i < 20; i++) expect(has(store, `small${i}`)).toBe(true);
    store.checkInvariants();
  });
});

describe("store key hash", () => {
  test("is MurmurHash3 x86 32-bit with seed 0 (published test vectors, every tail length)", () => {
    const vectors: [string, number][] = [
      ["", 0x00000000],
      ["hello", 0x248bfa47],
      ["hello, world", 0x149bbb7f],
      ["19 Jan 2038 at 3:14:07 AM", 0xe31e8a70],
      ["The quick brown fox jumps over the lazy dog.", 0xd5c48bfc],
      ["ab", 0x9bbfd75f],
      ["abc", 0xb3dd93fa],
    ];
    for (const [text, hash] of vectors) expect([text, hashKey(enc.encode(text), 0, text.length)]).toEqual([text, hash]);
    // Bytes above 0x7f (a binary meta key): from a Python transcription of the reference code.
    const high = Uint8Array.of(0x6b, 0x65, 0x79, 0xff, 0x80, 0x61, 0x62);
    expect(hashKey(high, 0, high.length)).toBe(0xc5326ac5);
    // An offset into a larger buffer hashes the same bytes.
    const framed = enc.encode("get hello\r\n");
    expect(hashKey(framed, 4, 5)).toBe(0x248bfa47);
  });
});

describe("store counters", () => {
  test("incr rewrites a counter whose digits are split across extents without touching its neighbours", () => {
    // Fill a tiny arena with two-unit items, then free every other one: only small holes remain,
    // so the counter below is stored across several extents.
    const store = makeStore(4096, 2048);
    for (let i = 0; i < 60; i++) set(store, `f${String(i).padStart(3, "0")}`, "x");
    for (let i = 0; i < 200 && store.counters.evictions === 0; i++) set(store, `fill${i}`, "x");
    for (let i = 0; i < 60; i += 2) {
      const k = enc.encode(`f${String(i).padStart(3, "0")}`);
      store.delete(k, 0, k.length);
    }
    expect(set(store, "counter:01", "1269031")).toBe(StoreResult.Stored);
    const k = enc.encode("counter:01");
    expect(store.delta(k, 0, k.length, true, 620043n)).toBe(0);
    expect(get(store, "counter:01")).toBe("1889074");
    for (let i = 1; i < 60; i += 2) {
      const v = get(store, `f${String(i).padStart(3, "0")}`);
      if (v !== null) expect(v).toBe("x");
    }
    store.checkInvariants();
  });
});

describe("store flush", () => {
  for (const eviction of ["lru", "gdsf"] as const) {
    test(`flushAll empties a populated ${eviction} cache, fragmented and spread over extents, and it is usable after`, () => {
      const store = makeStore(256 * 1024, 64 * 1024, eviction);
      for (let round = 0; round < 3; round++) {
        // Mixed sizes until eviction runs, then holes, then items that must be spread.
        for (let i = 0; i < 2000; i++) set(store, `k${round}:${i}`, "v".repeat(1 + ((i * 37) % 3000)));
        for (let i = 0; i < 2000; i += 3) {
          const k = enc.encode(`k${round}:${i}`);
          store.delete(k, 0, k.length);
        }
        expect(set(store, `spread${round}`, "s".repeat(40000))).toBe(StoreResult.Stored);
        expect(store.itemCount).toBeGreaterThan(10);
        store.flushAll();
        expect(store.itemCount).toBe(0);
        expect(store.bytesUsed).toBe(0);
        expect(get(store, `spread${round}`)).toBeNull();
        store.checkInvariants();
        // The whole arena is one free run again: an item of nearly the arena's size fits whole.
        expect(set(store, "after", "a".repeat(60000))).toBe(StoreResult.Stored);
        expect(get(store, "after")).toBe("a".repeat(60000));
        store.checkInvariants();
      }
    });
  }
});

describe("store namespaces", () => {
  const key = enc.encode("same-bytes");
  const put = (store: Store, value: string, ns: Namespace): StoreResult => {
    const v = enc.encode(value);
    return store.store(StoreMode.Set, key, 0, key.length, 0, 0, v, 0, v.length, 0, ns);
  };
  const read = (store: Store, ns: Namespace): string | null => {
    const it = store.get(key, 0, key.length, ns);
    if (it === 0) return null;
    const out = new Uint8Array(store.valueLength(it));
    store.copyValueTo(it, out, 0);
    return dec.decode(out);
  };

  test("the same key bytes in the client and object namespaces are two items", () => {
    const store = makeStore();
    expect(put(store, "client", Namespace.Client)).toBe(StoreResult.Stored);
    expect(put(store, "object", Namespace.Objects)).toBe(StoreResult.Stored);
    expect(read(store, Namespace.Client)).toBe("client");
    expect(read(store, Namespace.Objects)).toBe("object");
    expect(store.delete(key, 0, key.length)).toBe(true);
    expect(read(store, Namespace.Objects)).toBe("object");
    const seen: number[] = [];
    store.forEachItem(Namespace.Objects, (it) => seen.push(store.keyLength(it)));
    expect(seen).toEqual([key.length]);
    store.checkInvariants();
  });

  test("a failed object update keeps the object; a failed client set drops the old value, as memcached", () => {
    const store = makeStore(64 * 1024, 1024);
    put(store, "kept", Namespace.Objects);
    put(store, "dropped", Namespace.Client);
    expect(put(store, "x".repeat(2000), Namespace.Objects)).toBe(StoreResult.TooLarge);
    expect(put(store, "x".repeat(2000), Namespace.Client)).toBe(StoreResult.TooLarge);
    expect(read(store, Namespace.Objects)).toBe("kept");
    expect(read(store, Namespace.Client)).toBeNull();
    store.checkInvariants();
  });
});

describe("store expiry crawler", () => {
  const VALUE = "v".repeat(400);

  /** Fills the arena with alternating expiring (ttl 10 s) and lasting items until the first eviction. */
  function fillHalfExpiring(store: Store, onExpiring: (key: string) => void = () => {}): { lasting: string[]; expiring: number } {
    const lasting: string[] = [];
    let expiring = 0;
    for (let i = 0; store.counters.evictions === 0; i++) {
      const key = `old${i}`;
      if (i % 2 === 0) {
        set(store, key, VALUE, 10);
        onExpiring(key);
        expiring++;
      } else {
        set(store, key, VALUE);
        lasting.push(key);
      }
    }
    return { lasting: lasting.filter((k) => has(store, k)), expiring };
  }

  test.each(["lru", "gdsf"] as const)("with half of a full arena expired, new items evict no live item while expired ones remain (%s)", (eviction) => {
    const store = makeStore(MB, MB, eviction);
    const { lasting, expiring } = fillHalfExpiring(store);
    const evictedWhileFilling = store.counters.evictions;
    store.clock.now += 11;
    // A third of the expired items' room: expired ones remain throughout.
    for (let i = 0; i < expiring / 3; i++) expect(set(store, `new${i}`, VALUE)).toBe(StoreResult.Stored);
    expect(store.counters.evictions).toBe(evictedWhileFilling);
    expect(store.crawler.reclaimed).toBeGreaterThan(0);
    for (const key of lasting) expect(has(store, key)).toBe(true);
    store.checkInvariants();
  });

  test("gdsf victimizes expired items first, however often they were read", () => {
    const store = makeStore(MB, MB, "gdsf");
    // The expiring items are read often (high priority), the lasting ones never (lowest).
    const { lasting, expiring } = fillHalfExpiring(store, (key) => {
      for (let r = 0; r < 5; r++) get(store, key);
    });
    const evictedWhileFilling = store.counters.evictions;
    store.clock.now += 11;
    for (let i = 0; i < expiring / 3; i++) set(store, `new${i}`, VALUE);
    expect(store.counters.evictions).toBe(evictedWhileFilling);
    for (const key of lasting) expect(has(store, key)).toBe(true);
    store.checkInvariants();
  });

  test("an allocation's crawl looks at a bounded number of items, not the whole index", () => {
    const store = makeStore(4 * MB);
    for (let i = 0; store.counters.evictions === 0; i++) set(store, `e${i}`, "x".repeat(100), 10);
    const held = store.itemCount;
    store.clock.now += 11;
    const bound = CRAWL_ITEMS_PER_ALLOCATION + 8; // the slice ends with a whole bucket chain
    for (let i = 0; i < 100; i++) {
      const before = store.crawler.itemsChecked;
      expect(set(store, `n${i}`, "x".repeat(100))).toBe(StoreResult.Stored);
      expect(store.crawler.itemsChecked - before).toBeLessThanOrEqual(bound);
    }
    // Most expired items are still there for later slices: nothing walked the whole arena.
    expect(store.itemCount).toBeGreaterThan(held / 2);
    expect(store.counters.evictions).toBe(1);
    store.checkInvariants();
  });

  test("a timer slice frees the expired items among at most the items it is given", () => {
    const store = makeStore(4 * MB);
    for (let i = 0; i < 10_000; i++) set(store, `e${i}`, "x", i % 2 === 0 ? 10 : 0);
    store.clock.now += 11;
    const freed = store.crawlExpired(1000, 1 << 20);
    expect(store.crawler.itemsChecked).toBeGreaterThanOrEqual(1000);
    expect(store.crawler.itemsChecked).toBeLessThanOrEqual(1008);
    expect(freed).toBe(store.crawler.reclaimed);
    expect(freed).toBeGreaterThan(300);
    expect(store.itemCount).toBe(10_000 - freed);
    // Slice after slice, the cursor goes round the whole index: every expired item goes.
    for (let i = 0; i < 20; i++) store.crawlExpired(1000, 1 << 20);
    expect(store.itemCount).toBe(5000);
    store.checkInvariants();
  });

  test("expired_unfetched counts expired items no read ever hit", () => {
    const store = makeStore();
    set(store, "read", "x", 10);
    set(store, "unread", "x", 10);
    set(store, "unread-evicted-end", "x", 10);
    expect(get(store, "read")).toBe("x");
    store.clock.now += 11;
    expect(has(store, "unread-evicted-end")).toBe(false); // reclaimed on lookup
    store.crawlExpired(100, 1 << 20);
    expect(store.crawler.reclaimed).toBe(2);
    expect(store.counters.reclaimed).toBe(1);
    expect(store.counters.expiredUnfetched).toBe(2);
    store.checkInvariants();
  });

  test("the count of expiring items follows touch, replace and delete; no slice runs without them", () => {
    const store = makeStore();
    set(store, "a", "x", 10);
    set(store, "b", "x");
    store.checkInvariants();
    expect(store.touch(enc.encode("a"), 0, 1, 0)).toBe(true); // a no longer expires
    expect(store.touch(enc.encode("b"), 0, 1, 5)).toBe(true); // b now does
    store.checkInvariants();
    set(store, "b", "y");
    store.checkInvariants();
    store.clock.now += 11;
    expect(store.crawlExpired(100, 1 << 20)).toBe(0);
    expect(store.crawler.itemsChecked).toBe(0);
  });

  test("flush_all forgets the expiring items it removed, and the crawler goes on freeing later ones", () => {
    const store = makeStore(4 * MB);
    for (let i = 0; i < 5000; i++) set(store, `a${i}`, "x", 10);
    store.crawlExpired(700, 1 << 20); // the cursor is somewhere inside the index
    store.flushAll();
    store.checkInvariants();
    for (let i = 0; i < 5000; i++) set(store, `b${i}`, "x", i % 2 === 0 ? 10 : 0);
    store.clock.now += 11;
    for (let i = 0; i < 10; i++) store.crawlExpired(1000, 1 << 20);
    expect(store.itemCount).toBe(2500);
    store.checkInvariants();
  });
});
