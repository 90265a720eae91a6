/**
 * Key hash functions exactly as twemproxy (nutcracker 0.5.0, src/hashkit/)
 * computes them on x86_64/Linux, named as in its `hash:` pool setting.
 *
 * Quirks reproduced on purpose, because they decide which node owns a key:
 * - twemproxy reads key bytes through a signed `char`, so in fnv1_64, fnv1a_64,
 *   fnv1_32, fnv1a_32, one_at_a_time and the 3-byte tail of hsieh a byte
 *   >= 0x80 is sign-extended (0xE9 enters the hash as 0xFFFFFFE9).
 * - fnv1_64 runs in 64 bits and returns the low 32; fnv1a_64 truncates the
 *   64-bit offset basis and prime *before* its loop (0x84222325, 0x1b3) and
 *   runs in 32 bits. The low 32 bits of a 64-bit product depend only on the
 *   low 32 bits of its factors, so both equal the low half of true 64-bit
 *   FNV and reduce to 32-bit arithmetic with the truncated constants.
 * - crc32 is libmemcached's: bits 16..30 of the standard CRC-32 (0..32767);
 *   crc32a is the standard CRC-32.
 * - crc16 is CRC-16/XMODEM computed in a uint32 that is never masked, so the
 *   shifted-out bits pile up above bit 15 (its low 16 bits are the real CRC).
 *   twemproxy after 0.5.0 replaced it with a masked CRC-16/ARC; we follow the
 *   0.5.0 release that Debian ships.
 * - md5 is the first four digest bytes read little-endian.
 * - murmur is MurmurHash2 with seed 0xdeadbeef * length, jenkins is lookup3
 *   `hashlittle` with initval 13.
 */
import { copyBytes, readInt32LE } from "../bytes.ts";

export const HASH_NAMES = [
  "one_at_a_time",
  "md5",
  "crc16",
  "crc32",
  "crc32a",
  "fnv1_64",
  "fnv1a_64",
  "fnv1_32",
  "fnv1a_32",
  "hsieh",
  "murmur",
  "jenkins",
] as const;

export type HashName = (typeof HASH_NAMES)[number];

/** Hashes `len` bytes of `key` from `off`; the result is an unsigned 32-bit integer. */
export type HashFn = (key: Uint8Array, off: number, len: number) => number;

/** A byte as twemproxy sees it through a signed char, widened to 32 bits. */
function signedByte(b: number): number {
  return (b << 24) >> 24;
}

const FNV64_BASIS_LO = 0x84222325; // (uint32_t) 0xcbf29ce484222325
const FNV64_PRIME_LO = 0x1b3; // (uint32_t) 0x100000001b3
const FNV32_BASIS = 0x811c9dc5;
const FNV32_PRIME = 0x01000193;

function fnv1(basis: number, prime: number): HashFn {
  return (key, off, len) => {
    let h = basis;
    for (let i = off, end = off + len; i < end; i++) {
      h = Math.imul(h, prime) ^ signedByte(key[i]);
    }
    return h >>> 0;
  };
}

function fnv1a(basis: number, prime: number): HashFn {
  return (key, off, len) => {
    let h = basis;
    for (let i = off, end = off + len; i < end; i++) {
      h = Math.imul(h ^ signedByte(key[i]), prime);
    }
    return h >>> 0;
  };
}

function oneAtATime(key: Uint8Array, off: number, len: number): number {
  let h = 0;
  for (let i = off, end = off + len; i < end; i++) {
    h = (h + signedByte(key[i])) | 0;
    h = (h + (h << 10)) | 0;
    h ^= h >>> 6;
  }
  h = (h + (h << 3)) | 0;
  h ^= h >>> 11;
  h = (h + (h << 15)) | 0;
  return h >>> 0;
}

const CRC32_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

const CRC16_XMODEM_TABLE = ((): Uint16Array => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    table[n] = c;
  }
  return table;
})();

function crc32Standard(key: Uint8Array, off: number, len: number): number {
  let crc = 0xffffffff;
  for (let i = off, end = off + len; i < end; i++) {
    crc = (crc >>> 8) ^ CRC32_TABLE[(crc ^ key[i]) & 0xff];
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function crc32Libmemcached(key: Uint8Array, off: number, len: number): number {
  return (crc32Standard(key, off, len) >>> 16) & 0x7fff;
}

function crc16(key: Uint8Array, off: number, len: number): number {
  let crc = 0;
  for (let i = off, end = off + len; i < end; i++) {
    crc = (crc << 8) ^ CRC16_XMODEM_TABLE[((crc >>> 8) ^ key[i]) & 0xff];
  }
  return crc >>> 0;
}

const md5Digest = new Uint8Array(16);
/**
 * Bun.MD5.hash takes a whole view. A view of the request buffer itself (`subarray`) costs an
 * allocation per key (5 % of a forwarding node's samples under 16-key multigets; 0.7 % after);
 * instead a key is copied into one scratch buffer and hashed through views of it made once per
 * length.
 */
const MD5_SCRATCH_BYTES = 256;
const md5Scratch = new Uint8Array(MD5_SCRATCH_BYTES);
const md5Views: Uint8Array[] = Array.from({ length: MD5_SCRATCH_BYTES + 1 }, (_, n) => md5Scratch.subarray(0, n));

/** The 4-byte little-endian word `word` (0..3) of MD5(key[off, off+len)). */
export function md5Word(key: Uint8Array, off: number, len: number, word: number): number {
  if (len <= MD5_SCRATCH_BYTES) {
    copyBytes(key, off, off + len, md5Scratch, 0);
    Bun.MD5.hash(md5Views[len], md5Digest);
  } else Bun.MD5.hash(key.subarray(off, off + len), md5Digest);
  const p = word * 4;
  return (md5Digest[p] | (md5Digest[p + 1] << 8) | (md5Digest[p + 2] << 16) | (md5Digest[p + 3] << 24)) >>> 0;
}

function md5(key: Uint8Array, off: number, len: number): number {
  return md5Word(key, off, len, 0);
}

function murmur(key: Uint8Array, off: number, len: number): number {
  const m = 0x5bd1e995;
  let h = Math.imul(0xdeadbeef, len) ^ len;
  let i = off;
  let rest = len;
  while (rest >= 4) {
    let k = Math.imul(readInt32LE(key, i), m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
    i += 4;
    rest -= 4;
  }
  if (rest > 0) {
    if (rest === 3) h ^= key[i + 2] << 16;
    if (rest >= 2) h ^= key[i + 1] << 8;
    h = Math.imul(h ^ key[i], m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h >>> 0;
}

function hsieh(key: Uint8Array, off: number, len: number): number {
  if (len <= 0) return 0;
  const get16 = (i: number): number => key[i] | (key[i + 1] << 8);
  const rem = len & 3;
  let h = 0;
  let i = off;
  for (let blocks = len >>> 2; blocks > 0; blocks--) {
    h = (h + get16(i)) | 0;
    const tmp = (get16(i + 2) << 11) ^ h;
    h = (h << 16) ^ tmp;
    i += 4;
    h = (h + (h >>> 11)) | 0;
  }
  switch (rem) {
    case 3:
      h = (h + get16(i)) | 0;
      h ^= h << 16;
      h ^= signedByte(key[i + 2]) << 18;
      h = (h + (h >>> 11)) | 0;
      break;
    case 2:
      h = (h + get16(i)) | 0;
      h ^= h << 11;
      h = (h + (h >>> 17)) | 0;
      break;
    case 1:
      h = (h + key[i]) | 0;
      h ^= h << 10;
      h = (h + (h >>> 1)) | 0;
      break;
  }
  h ^= h << 3;
  h = (h + (h >>> 5)) | 0;
  h ^= h << 4;
  h = (h + (h >>> 17)) | 0;
  h ^= h << 25;
  h = (h + (h >>> 6)) | 0;
  return h >>> 0;
}

function rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * lookup3 hashlittle. twemproxy picks a 4-, 2- or 1-byte read path by pointer
 * alignment; on little-endian machines all three give this same result.
 */
function jenkins(key: Uint8Array, off: number, len: number): number {
  let a = (0xdeadbeef + len + 13) | 0;
  let b = a;
  let c = a;
  let i = off;
  let rest = len;
  while (rest > 12) {
    a = (a + readInt32LE(key, i)) | 0;
    b = (b + readInt32LE(key, i + 4)) | 0;
    c = (c + readInt32LE(key, i + 8)) | 0;
    a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
    i += 12;
    rest -= 12;
  }
  if (rest === 0) return c >>> 0;
  // Last block: byte j of the 12 lands in word j>>2 at bit 8*(j&3).
  const tail = [0, 0, 0];
  for (let j = 0; j < rest; j++) tail[j >> 2] |= key[i + j] << (8 * (j & 3));
  a = (a + tail[0]) | 0;
  b = (b + tail[1]) | 0;
  c = (c + tail[2]) | 0;
  c ^= b; c = (c - rot(b, 14)) | 0;
  a ^= c; a = (a - rot(c, 11)) | 0;
  b ^= a; b = (b - rot(a, 25)) | 0;
  c ^= b; c = (c - rot(b, 16)) | 0;
  a ^= c; a = (a - rot(c, 4)) | 0;
  b ^= a; b = (b - rot(a, 14)) | 0;
  c ^= b; c = (c - rot(b, 24)) | 0;
  return c >>> 0;
}

const HASHES: Record<HashName, HashFn> = {
  one_at_a_time: oneAtATime,
  md5,
  crc16,
  crc32: crc32Libmemcached,
  crc32a: crc32Standard,
  fnv1_64: fnv1(FNV64_BASIS_LO, FNV64_PRIME_LO),
  fnv1a_64: fnv1a(FNV64_BASIS_LO, FNV64_PRIME_LO),
  fnv1_32: fnv1(FNV32_BASIS, FNV32_PRIME),
  fnv1a_32: fnv1a(FNV32_BASIS, FNV32_PRIME),
  hsieh,
  murmur,
  jenkins,
};

export function isHashName(name: string): name is HashName {
  return (HASH_NAMES as readonly string[]).includes(name);
}

export function hashFunction(name: HashName): HashFn {
  return HASHES[name];
}

/** Convenience: hash a whole key (string keys are UTF-8 encoded). */
export function hashKey(name: HashName, key: Uint8Array | string): number {
  const bytes = typeof key === "string" ? new TextEncoder().encode(key) : key;
  return HASHES[name](bytes, 0, bytes.length);
}
