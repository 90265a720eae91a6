/**
 * The differential stream's keys and what the generator knows about each: the cas ids seen for
 * it, and enough of its length to stay away from memcached's space-padded counters (a README
 * difference: an incr/decr result shorter than the stored value is padded with spaces by memcached,
 * stored short by cacheismo), so a key that may hold one is never read nor appended to until it is
 * overwritten, deleted or flushed.
 */
export const KEYS: readonly string[] = [
  ...Array.from({ length: 20 }, (_, i) => `k${i}`),
  "x".repeat(250), // the longest valid key
  "k\u00ff\u00fe\u0080", // high bytes
  "\u0001ctl\u007f",
  "a:b/c-d_e.f",
];
/**
 * One byte too long: only for delete, incr/decr and touch. A `set` with it is a README difference;
 * a get with it makes memcached 1.6.18 drop the replies it still owed to earlier pipelined requests.
 */
export const TOO_LONG_KEY: string = "y".repeat(251);
/** Never stored: a retrieval falls back to it when every pool key may be padded. */
export const ABSENT_KEY: string = "never-stored";

export interface KeyState {
  /** Canonical cas ids seen for this key in gets/gats replies, oldest first. */
  readonly casIds: number[];
  /** The stored value's exact length, when known. */
  length: number | undefined;
  /** An upper bound of the stored value's length (keeps appends far below -I). */
  maxLength: number;
  /** memcached may hold a space-padded counter here. */
  padded: boolean;
  /**
   * The value may be a number of 2^63 or more: memcached's incr then looks for a '-' with strchr
   * over the unterminated value and into the memory after it, so its answer is not the protocol's.
   */
  huge: boolean;
}

/** Conservatively, whether `value` (latin1) may read as a counter of 2^63 or more: it has such a number anywhere. */
export function mayBeHuge(value: string): boolean {
  for (const [run] of value.matchAll(/\d{19,}/g)) {
    const digits: string = run.replace(/^0+/, "");
    if (digits.length > 19 || (digits.length === 19 && digits >= "9223372036854775808")) return true;
  }
  return false;
}

export function freshKeyState(): KeyState {
  return { casIds: [], length: undefined, maxLength: 0, padded: false, huge: false };
}

/** The key was removed (delete, flush_all, a failed set): nothing to pad, nothing to grow. */
export function markAbsent(state: KeyState): void {
  state.length = undefined;
  state.maxLength = 0;
  state.padded = false;
  state.huge = false;
}

/** The value is now exactly `value` (latin1) and not a padded counter. */
export function markStored(state: KeyState, value: string): void {
  state.length = value.length;
  state.maxLength = value.length;
  state.padded = false;
  state.huge = mayBeHuge(value);
}

/** A write whose outcome is unknown (noreply, or not yet answered) that may leave `value`, `maxLength` bytes in all. */
export function markMaybe(state: KeyState, value: string, maxLength: number): void {
  state.length = undefined;
  state.maxLength = Math.max(state.maxLength, maxLength);
  state.huge ||= mayBeHuge(value);
}

/**
 * incr/decr answered `result`: memcached rewrites in place, padding with spaces, when the result
 * is shorter than the value it replaces; undefined = not answered (yet).
 */
export function markCounted(state: KeyState, result: string | undefined): void {
  state.huge = result === undefined || mayBeHuge(result);
  if (result !== undefined && state.length !== undefined && result.length >= state.length) {
    state.length = state.maxLength = result.length;
    state.padded = false;
    return;
  }
  state.padded = true;
  if (result === undefined || state.length === undefined) state.length = undefined;
  state.maxLength = Math.max(state.maxLength, result?.length ?? 20, state.length ?? 0);
}
