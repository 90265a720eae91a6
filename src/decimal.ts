/**
 * memcached's safe_strtoull (util.c) over bytes: what incr/decr accept as a delta and as a stored
 * counter. glibc's strtoull skips leading whitespace and takes a sign; the digits may be followed
 * by whitespace (and then anything) or NUL; a result of 2^63 or more is refused when a '-' was
 * given (strtoull negates, so "-0" is 0 and "-1" is refused). The end of the bytes counts as the
 * terminator memcached sees there (NUL after a token, CR after a value).
 */
const U64_WRAP = 1n << 64n;
const I64_MIN = 1n << 63n;

function isSpace(b: number): boolean {
  return b === 32 || (b >= 9 && b <= 13);
}

/** The number memcached reads from buf[s, e), or -1n when it refuses the text. */
export function parseCounter(buf: Uint8Array, s: number, e: number): bigint {
  let i = s;
  while (i < e && isSpace(buf[i])) i++;
  const negative = i < e && buf[i] === 45;
  if (i < e && (buf[i] === 43 || buf[i] === 45)) i++;
  const first = i;
  while (i < e && buf[i] >= 48 && buf[i] <= 57) i++;
  if (i === first || (i < e && !isSpace(buf[i]) && buf[i] !== 0)) return -1n;
  let d = first;
  while (d < i - 1 && buf[d] === 48) d++;
  if (i - d > 20) return -1n; // ERANGE
  let value = 0n;
  if (i - d <= 15) {
    let small = 0;
    for (let k = d; k < i; k++) small = small * 10 + (buf[k] - 48);
    value = BigInt(small);
  } else {
    for (let k = d; k < i; k++) value = value * 10n + BigInt(buf[k] - 48);
    if (value >= U64_WRAP) return -1n; // ERANGE
  }
  if (!negative || value === 0n) return value;
  value = U64_WRAP - value;
  return value >= I64_MIN ? -1n : value;
}
