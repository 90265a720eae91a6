/**
 * Splits a multi-get reply from a peer into its VALUE blocks, by key, so replies from several
 * owners can be merged back into the client's key order.
 */
import { latin1String } from "../latin1.ts";

/** Returns key → the whole `VALUE …\r\n<data>\r\n` block, or null when the reply is not VALUE*…END. */
export function valueBlocksByKey(reply: Uint8Array): Map<string, Uint8Array> | null {
  const blocks = new Map<string, Uint8Array>();
  let pos = 0;
  for (;;) {
    const nl = reply.indexOf(10, pos);
    if (nl < 0) return null;
    const line = latin1String(reply, pos, nl > pos && reply[nl - 1] === 13 ? nl - 1 : nl);
    if (line === "END") return blocks;
    const m = /^VALUE (\S+) \d+ (\d+)( \d+)?$/.exec(line);
    if (m === null) return null;
    const end = nl + 1 + Number(m[2]) + 2;
    if (end > reply.length) return null;
    if (!blocks.has(m[1])) blocks.set(m[1], reply.subarray(pos, end));
    pos = end;
  }
}
