/**
 * Byte-level damage to a request: bit flips, byte swaps, truncation, deleted or duplicated runs,
 * inserted spaces/CR/LF/NUL, and numbers replaced by hostile ones (negative, 2^32, 2^64, 30
 * digits, hex, signs).
 */
import { ascii, concat } from "./bytes.ts";
import type { Rng } from "./rng.ts";

const HOSTILE_NUMBERS: readonly string[] = [
  "-1",
  "0",
  "-0",
  "+5",
  "2147483647",
  "2147483648",
  "4294967295",
  "4294967296",
  "9223372036854775807",
  "9223372036854775808",
  "18446744073709551615",
  "18446744073709551616",
  "999999999999999999999999999999",
  "00000000000000000000000000001",
  "0x10",
  "1e3",
  "",
];
const INSERTS: readonly number[] = [32, 13, 10, 0, 0xff, 9];

type Mutation = (bytes: Uint8Array, rng: Rng) => Uint8Array;

const flipBit: Mutation = (b, rng) => {
  const out: Uint8Array = b.slice();
  out[rng.int(b.length)] ^= 1 << rng.int(8);
  return out;
};

const replaceByte: Mutation = (b, rng) => {
  const out: Uint8Array = b.slice();
  out[rng.int(b.length)] = rng.int(256);
  return out;
};

const insertByte: Mutation = (b, rng) => {
  const at: number = rng.int(b.length + 1);
  return concat([b.subarray(0, at), Uint8Array.of(rng.pick(INSERTS)), b.subarray(at)]);
};

const truncate: Mutation = (b, rng) => b.slice(0, rng.int(b.length));

const deleteRun: Mutation = (b, rng) => {
  const at: number = rng.int(b.length);
  return concat([b.subarray(0, at), b.subarray(at + rng.range(1, 16))]);
};

const duplicateRun: Mutation = (b, rng) => {
  const at: number = rng.int(b.length);
  const run: Uint8Array = b.subarray(at, at + rng.range(1, 64));
  return concat([b.subarray(0, at), run, b.subarray(at)]);
};

/** Replaces one decimal number on the command line (not in the data block) with a hostile one. */
const hostileNumber: Mutation = (b, rng) => {
  const lineEnd: number = b.indexOf(10) < 0 ? b.length : b.indexOf(10);
  const starts: number[] = [];
  for (let i = 0; i < lineEnd; i++) {
    const digit: boolean = b[i] >= 48 && b[i] <= 57;
    if (digit && (i === 0 || b[i - 1] === 32)) starts.push(i);
  }
  if (starts.length === 0) return insertByte(b, rng);
  const start: number = rng.pick(starts);
  let end: number = start;
  while (end < lineEnd && b[end] !== 32 && b[end] !== 13) end++;
  return concat([b.subarray(0, start), ascii(rng.pick(HOSTILE_NUMBERS)), b.subarray(end)]);
};

const MUTATIONS: readonly Mutation[] = [flipBit, replaceByte, insertByte, insertByte, truncate, deleteRun, duplicateRun, hostileNumber, hostileNumber];

/** One to three random mutations of `bytes` (a copy; the input is not changed). */
export function mutate(bytes: Uint8Array, rng: Rng): Uint8Array {
  let out: Uint8Array = bytes;
  const rounds: number = rng.range(1, 3);
  for (let i = 0; i < rounds; i++) out = out.length === 0 ? insertByte(out, rng) : rng.pick(MUTATIONS)(out, rng);
  return out;
}
