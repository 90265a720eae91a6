/**
 * Self-describing values for the soak: a value is one or more records
 *   <key>|<version>|<payload length>|<payload><fnv-1a of all before, 8 hex>;
 * (append and prepend add records). The payload is derived from key and version, so a value
 * proves by itself which key and which write it came from, and any damaged byte shows.
 */
import { ascii, concat, latin1 } from "./bytes.ts";
import { Rng } from "./rng.ts";

const BAR: number = 124; // '|'
const SEMICOLON: number = 59;

function fnv1a(bytes: Uint8Array, from: number = 0, to: number = bytes.length): number {
  let h: number = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

export function encodeRecord(key: string, version: number, payloadLength: number): Uint8Array {
  const seed: number = fnv1a(ascii(`${key}#${version}`));
  const body: Uint8Array = concat([ascii(`${key}|${version}|${payloadLength}|`), new Rng(seed).bytes(payloadLength)]);
  return concat([body, ascii(`${fnv1a(body).toString(16).padStart(8, "0")};`)]);
}

/** The versions of the records in `value`, in order; or what is wrong with it. */
export type Decoded = { versions: number[]; error?: undefined } | { versions?: undefined; error: string };

export function decodeRecords(value: Uint8Array, key: string): Decoded {
  const versions: number[] = [];
  let at: number = 0;
  if (value.length === 0) return { error: "empty value" };
  while (at < value.length) {
    const start: number = at;
    const fields: string[] = [];
    for (let f = 0; f < 3; f++) {
      const bar: number = value.indexOf(BAR, at);
      if (bar < 0 || bar - at > 300) return { error: `record at ${start}: no field ${f}` };
      fields.push(latin1(value.subarray(at, bar)));
      at = bar + 1;
    }
    const [recordKey, version, length] = fields;
    if (recordKey !== key) return { error: `record at ${start} belongs to key ${JSON.stringify(recordKey.slice(0, 60))}` };
    if (!/^\d+$/.test(version) || !/^\d+$/.test(length)) return { error: `record at ${start}: bad version or length` };
    const end: number = at + Number(length);
    if (end + 9 > value.length || value[end + 8] !== SEMICOLON) return { error: `record at ${start}: truncated` };
    const sum: string = latin1(value.subarray(end, end + 8));
    if (sum !== fnv1a(value, start, end).toString(16).padStart(8, "0")) return { error: `record at ${start}: checksum mismatch` };
    if (!equalBytes(value.subarray(start, end + 9), encodeRecord(key, Number(version), Number(length)))) {
      return { error: `record at ${start}: payload is not the one version ${version} wrote` };
    }
    versions.push(Number(version));
    at = end + 9;
  }
  return { versions };
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
