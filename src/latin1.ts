/**
 * Bytes as strings of one character per byte (U+0000..U+00FF) and back, for keys and protocol
 * lines on the slow paths (virtual keys, forwarding, scripting). TextDecoder's "latin1" is
 * windows-1252 under the WHATWG spec and maps 0x80..0x9f to other characters, so it is not used.
 */

export function latin1String(bytes: Uint8Array, from = 0, to = bytes.length): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).toString("latin1");
}

/** One byte per character; characters above U+00FF never come from latin1String. */
export function latin1Bytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  writeLatin1(bytes, 0, text);
  return bytes;
}

/** Writes text one byte per character into out at `at`; returns where it ends. */
export function writeLatin1(out: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i);
  return at + text.length;
}

/** Whether bytes[from, to) are text, one byte per character. */
export function latin1Equals(bytes: Uint8Array, from: number, to: number, text: string): boolean {
  if (to - from !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[from + i] !== text.charCodeAt(i)) return false;
  return true;
}
