/**
 * The only replies a handler may give: zero or more complete
 * `VALUE <key> <flags> <bytes>\r\n<data>\r\n` blocks, each key a valid
 * memcached key (1 to 250 bytes, no spaces or control characters). Anything
 * else (`STORED\r\n`, an `END\r\n`, a block whose length is wrong) would be
 * read by the client as the answer to another key or request.
 */
import { KEY_MAX_BYTES } from "../store/item.ts";

const VALUE_PREFIX = [86, 65, 76, 85, 69, 32]; // "VALUE "
const CR = 13;
const LF = 10;
const SPACE = 32;
const DEL = 0x7f;
const MAX_FLAGS = 0xffffffff;
const MAX_FLAGS_DIGITS = 10;
const MAX_LENGTH_DIGITS = 10;

export function isValueBlocks(reply: Uint8Array): boolean {
  let pos = 0;
  while (pos < reply.length) {
    pos = valueBlockEnd(reply, pos);
    if (pos < 0) return false;
  }
  return true;
}

/** Where the VALUE block starting at pos ends, or -1 when there is none there. */
function valueBlockEnd(b: Uint8Array, pos: number): number {
  for (let i = 0; i < VALUE_PREFIX.length; i++) if (b[pos + i] !== VALUE_PREFIX[i]) return -1;
  let p = pos + VALUE_PREFIX.length;
  const keyStart = p;
  while (p < b.length && b[p] > SPACE && b[p] !== DEL) p++;
  if (p === keyStart || p - keyStart > KEY_MAX_BYTES || b[p] !== SPACE) return -1;
  const flags = decimalAt(b, p + 1, MAX_FLAGS_DIGITS);
  if (flags < 0 || flags > MAX_FLAGS || b[decimalEnd] !== SPACE) return -1;
  const length = decimalAt(b, decimalEnd + 1, MAX_LENGTH_DIGITS);
  if (length < 0 || b[decimalEnd] !== CR || b[decimalEnd + 1] !== LF) return -1;
  const dataEnd = decimalEnd + 2 + length;
  if (dataEnd + 2 > b.length || b[dataEnd] !== CR || b[dataEnd + 1] !== LF) return -1;
  return dataEnd + 2;
}

/** Where the last decimalAt stopped. */
let decimalEnd = 0;

/** The decimal number of 1 to maxDigits digits at pos (-1 when there is none); sets decimalEnd. */
function decimalAt(b: Uint8Array, pos: number, maxDigits: number): number {
  let value = 0;
  let p = pos;
  while (p < b.length && p - pos < maxDigits && b[p] >= 48 && b[p] <= 57) value = value * 10 + (b[p++] - 48);
  decimalEnd = p;
  return p === pos ? -1 : value;
}
