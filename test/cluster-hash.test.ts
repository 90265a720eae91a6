/**
 * Known vectors for twemproxy's key hashes. Published check values where the
 * algorithm is standard; otherwise values this implementation produces that
 * were cross-checked against libhashkit 1.1.4 (murmur, jenkins: identical on
 * 20k random keys) and against nutcracker 0.5.0's routing (all of them, in
 * cluster-ketama.test.ts).
 */
import { describe, expect, test } from "bun:test";
import { HASH_NAMES, hashFunction, hashKey, isHashName, type HashName } from "../src/cluster/hash.ts";

const hex = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;

describe("published check values", () => {
  const cases: [HashName, string, number][] = [
    ["one_at_a_time", "a", 0xca2e9442],
    ["one_at_a_time", "The quick brown fox jumps over the lazy dog", 0x519e91f5],
    ["crc32a", "123456789", 0xcbf43926], // CRC-32 check value
    ["crc32", "123456789", 0x4bf4], // libmemcached: (crc32 >> 16) & 0x7fff
    ["fnv1_32", "hello", 0xb6fa7167],
    ["fnv1a_32", "hello", 0x4f9f2cab],
    ["fnv1_64", "hello", 0xbdbdd4c7], // low half of FNV-1 64 0x7b495389bdbdd4c7
    ["fnv1a_64", "hello", 0x80aabd0b], // low half of FNV-1a 64 0xa430d84680aabd0b
    ["md5", "hello", 0x2a40415d], // MD5 5d41402a... read little-endian
    ["md5", "", 0xd98c1dd4], // MD5 d41d8cd9...
  ];
  for (const [name, input, want] of cases) {
    test(`${name}(${JSON.stringify(input)}) = ${hex(want)}`, () => {
      expect(hex(hashKey(name, input))).toBe(hex(want));
    });
  }

  test("crc16 is twemproxy 0.5.0's unmasked CRC-16/XMODEM: low 16 bits are the 0x31c3 check value", () => {
    const h = hashKey("crc16", "123456789");
    expect(h & 0xffff).toBe(0x31c3);
    expect(hex(h)).toBe("0x869031c3");
  });
});

describe("twemproxy-specific values", () => {
  const vectors: Record<HashName, [number, number, number]> = {
    // [ "hello", "aé" (3 bytes, high byte in the tail), "日本語キー" ]
    one_at_a_time: [0xc8fd181b, 0xbb4df02c, 0x98ebe695],
    md5: [0x2a40415d, 0x53da8f12, 0x6d0f9b6d],
    crc16: [0x6b4fc362, 0x7cd1cb9f, 0x890dfdfa],
    crc32: [0x3610, 0x7989, 0x28d8],
    crc32a: [0x3610a686, 0xf989e7c4, 0x28d82d30],
    fnv1_64: [0xbdbdd4c7, 0x6baffdd2, 0xc22e242d],
    fnv1a_64: [0x80aabd0b, 0x04918b7c, 0xdc2f058d],
    fnv1_32: [0xb6fa7167, 0x729c7972, 0x45bcaf2d],
    fnv1a_32: [0x4f9f2cab, 0xfdb0a7fc, 0xe8025ecd],
    hsieh: [0x13842ac5, 0x7449062e, 0x730791a3],
    murmur: [0x521b0bff, 0xfd9cafdd, 0xd916e601],
    jenkins: [0x2e0cc8f3, 0x22004d59, 0x55ffff00],
  };
  for (const name of HASH_NAMES) {
    test(`${name} of ASCII, short UTF-8 and long UTF-8 keys`, () => {
      expect(["hello", "aé", "日本語キー"].map((k) => hex(hashKey(name, k)))).toEqual(vectors[name].map(hex));
    });
  }

  test("empty keys: jenkins returns its seed, the FNVs their offset basis, the rest 0 (md5 aside)", () => {
    expect(hex(hashKey("jenkins", ""))).toBe("0xdeadbefc"); // 0xdeadbeef + 0 + 13
    expect(hex(hashKey("fnv1a_64", ""))).toBe("0x84222325");
    expect(hex(hashKey("fnv1_32", ""))).toBe("0x811c9dc5");
    for (const name of ["one_at_a_time", "crc16", "crc32", "crc32a", "hsieh", "murmur"] as const) {
      expect(hashKey(name, "")).toBe(0);
    }
  });
});

/** FNV over 64 bits with twemproxy's signed-char bytes, as BigInt reference. */
function fnv64Reference(bytes: Uint8Array, xorFirst: boolean): number {
  const mask = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    const v = BigInt.asUintN(64, BigInt((b << 24) >> 24));
    h = xorFirst ? ((h ^ v) * 0x100000001b3n) & mask : ((h * 0x100000001b3n) & mask) ^ v;
  }
  return Number(h & 0xffffffffn);
}

describe("quirks", () => {
  const random = (n: number, seed: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      out[i] = seed >>> 24;
    }
    return out;
  };

  test("fnv1_64 and fnv1a_64 equal the low 32 bits of 64-bit FNV over sign-extended bytes", () => {
    for (let t = 0; t < 500; t++) {
      const key = random(t % 70, t + 1);
      expect(hashKey("fnv1_64", key)).toBe(fnv64Reference(key, false));
      expect(hashKey("fnv1a_64", key)).toBe(fnv64Reference(key, true));
    }
  });

  test("bytes >= 0x80 enter fnv1a_32 sign-extended, unlike reference FNV-1a", () => {
    const signed = Math.imul(0x811c9dc5 ^ 0xffffffe9, 0x01000193) >>> 0;
    const reference = Math.imul(0x811c9dc5 ^ 0xe9, 0x01000193) >>> 0;
    expect(hashKey("fnv1a_32", new Uint8Array([0xe9]))).toBe(signed);
    expect(signed).not.toBe(reference);
  });

  test("every hash of a sub-range equals the hash of the copied bytes, at any alignment", () => {
    const buf = random(80, 7);
    for (const name of HASH_NAMES) {
      const fn = hashFunction(name);
      for (let off = 0; off < 4; off++) {
        for (let len = 0; len < 40; len++) {
          expect(fn(buf, off, len)).toBe(hashKey(name, buf.slice(off, off + len)));
        }
      }
    }
  });

  test("isHashName knows exactly twemproxy's hash names", () => {
    expect(HASH_NAMES.every(isHashName)).toBe(true);
    expect(isHashName("sha1")).toBe(false);
  });
});
