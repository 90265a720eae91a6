import type { Scripting } from "../../src/scripting/engine.ts";

/** A virtual key whose handler does not wait on other nodes answers at once; fail if it did not. */
export function immediateReply(s: Scripting, key: string): Uint8Array | null {
  const reply = s.handleGetKey(key);
  if (reply instanceof Promise) throw new Error(`${key} answered later; expected an immediate reply`);
  return reply;
}
