/**
 * Field values for the differential stream (bench/robustness/differential-ops.ts): binary values,
 * counters with memcached's parsing corners, deltas, exptimes and flags.
 */
import { ascii } from "./bytes.ts";
import type { Rng } from "./rng.ts";

/** The largest ordinary value; values only grow past it by append/prepend, up to GROWTH_LIMIT_BYTES. */
export const MAX_VALUE_BYTES: number = 100 * 1024;
/**
 * Far below -I (1 MB, where memcached counts its own item header and cacheismo its own) and below
 * memcached's 512 KB chunked-item size (where it refuses incr on any value).
 */
export const GROWTH_LIMIT_BYTES: number = 256 * 1024;
/** Obviously above -I on both servers. */
export const TOO_LARGE_BYTES: number = 2 * 1024 * 1024;

const U64_MAX: string = "18446744073709551615";

/** Mostly small, sometimes up to 100 KB; any byte value (CR, LF, NUL, high bytes), now and then a fake reply inside. */
export function binaryValue(rng: Rng): Uint8Array {
  const roll: number = rng.next();
  const length: number = roll < 0.9 ? rng.logLength(300) : roll < 0.98 ? rng.logLength(8 * 1024) : rng.range(8 * 1024, MAX_VALUE_BYTES);
  const value: Uint8Array = rng.bytes(length);
  if (length >= 16 && rng.chance(0.2)) value.set(ascii("\r\nEND\r\nVALUE x"), rng.int(length - 14));
  // memcached's incr parses a value of only whitespace on past its end, into whatever memory follows.
  if (length > 0 && value.every(isSpace)) value[0] = 0x78;
  return value;
}

/** C's isspace. */
function isSpace(byte: number): boolean {
  return byte === 32 || (byte >= 9 && byte <= 13);
}

/**
 * A value for incr/decr: plain numbers of every length, and the strings memcached's
 * safe_strtoull treats specially (leading whitespace and sign, a space then anything, NUL, 2^64);
 * never only whitespace (see binaryValue), and below 2^63 where it parses (see KeyState.huge).
 */
export function counterValue(rng: Rng): Uint8Array {
  if (rng.chance(0.7)) return ascii(rng.chance(0.7) ? String(rng.int(1000)) : String(randomU64(rng) >> 1n));
  return ascii(
    rng.pick([
      "0",
      "9223372036854775807",
      "18446744073709551616",
      "00000000000000000000000042",
      " 5",
      "\t7",
      "+5",
      "-5",
      "-0",
      "5 6x",
      "5x",
      "12\u0000",
      "\u000012",
      "",
      "0x10",
      "99999999999999999999999",
    ]),
  );
}

/** A delta token: valid ones of every size, and the invalid ones memcached rejects or (oddly) accepts. */
export function delta(rng: Rng): { token: string; valid: boolean } {
  if (rng.chance(0.85)) return { token: String(rng.chance(0.8) ? rng.int(200) : randomU64(rng)), valid: true };
  return rng.pick([
    { token: U64_MAX, valid: true },
    { token: "007", valid: true },
    { token: "18446744073709551616", valid: false },
    { token: "-1", valid: false },
    { token: "abc", valid: false },
    { token: "1x", valid: false },
    { token: "-0", valid: true },
    { token: "+3", valid: true },
  ]);
}

/**
 * 0, already expired (negative, or an absolute time in the past), or hours to days away (relative,
 * up to memcached's 30-day limit, or absolute): never near a second boundary that could tick mid-run.
 */
export function exptime(rng: Rng): number {
  const roll: number = rng.next();
  if (roll < 0.6) return 0;
  if (roll < 0.75) return rng.pick([-1, -1000, 2592001, 1_000_000_000]);
  if (roll < 0.9) return rng.pick([3600, 86_400, 2_592_000, rng.range(3600, 2_592_000)]);
  return Math.floor(Date.now() / 1000) + rng.range(3600, 30 * 86_400);
}

export function flags(rng: Rng): number {
  return rng.pick([0, 0, rng.int(100), rng.int(2 ** 32), 2 ** 32 - 1]);
}

function randomU64(rng: Rng): bigint {
  return (BigInt(rng.int(2 ** 32)) << 32n) | BigInt(rng.int(2 ** 32));
}
