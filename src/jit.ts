/**
 * Keeps a function out of its callers' optimized code (bun:jsc's `noInline`: in the module object,
 * though not in its type declarations). For code whose inlined copies would make a hot caller's
 * optimizing compile large: that compile's working memory comes on top of a full arena and made
 * the peak RSS of the hit-ratio bench (README, "What the W1 peak is"). A call costs about 4 ns.
 */
import * as jsc from "bun:jsc";

const noInline = (jsc as unknown as { noInline?: (fn: (...args: never[]) => unknown) => void }).noInline;

export function neverInline(fn: (...args: never[]) => unknown): void {
  noInline?.(fn);
}
