/**
 * What the soak knows about each key and how it judges a read. A key is written by one
 * connection only, so after every acknowledged write the exact bytes the server must hold are
 * known. A read is:
 *   - corrupt when the value is not a well-formed value of this key, or its newest record is the
 *     last acknowledged version but the bytes or flags differ from what was written, or it
 *     claims a version never written;
 *   - a lost write when it returns a version OLDER than the last acknowledged write (a
 *     value after an acknowledged delete, or an evicted item coming back, included);
 *   - a miss (not an error) when the key is gone: eviction under -m pressure, or expiry.
 */
import type { Item } from "./client.ts";
import { type Decoded, decodeRecords, equalBytes } from "./record.ts";

export interface KeyState {
  readonly key: string;
  /** Last acknowledged version; a delete takes a version too, so no value can carry it. */
  version: number;
  /** What the server must hold; undefined when the key is absent (never written, deleted, evicted). */
  value: Uint8Array | undefined;
  flags: number;
}

export interface Tally {
  reads: number;
  hits: number;
  /** Reads that found nothing where the model had a value: evicted or expired. */
  misses: number;
  corrupt: number;
  lostWrites: number;
  /** Replies no correct server sends here (e.g. EXISTS for a cas on a key nobody else writes). */
  unexpected: number;
  /** The first few problems, for the report. */
  examples: string[];
}

export function newTally(): Tally {
  return { reads: 0, hits: 0, misses: 0, corrupt: 0, lostWrites: 0, unexpected: 0, examples: [] };
}

export function newKeyState(key: string): KeyState {
  return { key, version: 0, value: undefined, flags: 0 };
}

const MAX_EXAMPLES: number = 10;

export function note(tally: Tally, kind: "corrupt" | "lostWrites" | "unexpected", what: string): void {
  tally[kind]++;
  if (tally.examples.length < MAX_EXAMPLES) tally.examples.push(`${kind}: ${what}`);
}

/** Judges a read of a key this connection owns; afterwards the state matches what the server showed. */
export function judgeOwnRead(state: KeyState, item: Item | undefined, tally: Tally): void {
  tally.reads++;
  if (item === undefined) {
    if (state.value !== undefined) tally.misses++;
    state.value = undefined;
    return;
  }
  tally.hits++;
  const decoded: Decoded = decodeRecords(item.value, state.key);
  if (decoded.error !== undefined) {
    note(tally, "corrupt", `${state.key}: ${decoded.error}`);
    return;
  }
  const version: number = Math.max(...decoded.versions);
  if (version < state.version || (version === state.version && state.value === undefined)) {
    note(tally, "lostWrites", `${state.key}: read version ${version}, last acknowledged ${state.value === undefined ? "removal at" : ""} ${state.version}`);
  } else if (version > state.version) {
    note(tally, "corrupt", `${state.key}: read version ${version}, never written (last ${state.version})`);
  } else if (!equalBytes(item.value, state.value!) || item.flags !== state.flags) {
    note(tally, "corrupt", `${state.key}: version ${version} differs from what was written (${item.value.length} bytes, flags ${item.flags}; wrote ${state.value!.length} bytes, flags ${state.flags})`);
  } else {
    return;
  }
  // Whatever it was, the server holds this now: judge later reads against it.
  state.value = item.value;
  state.flags = item.flags;
  state.version = Math.max(state.version, version);
}

/**
 * Judges a read of a key another connection owns: any well-formed value of the key is fine
 * unless it is older than `floor`, the owner's last acknowledged version when the read was sent.
 */
export function judgeForeignRead(key: string, floor: number, item: Item | undefined, tally: Tally): void {
  tally.reads++;
  if (item === undefined) return;
  tally.hits++;
  const decoded: Decoded = decodeRecords(item.value, key);
  if (decoded.error !== undefined) {
    note(tally, "corrupt", `${key} (foreign read): ${decoded.error}`);
    return;
  }
  const version: number = Math.max(...decoded.versions);
  if (version < floor) note(tally, "lostWrites", `${key} (foreign read): version ${version}, owner had acknowledged ${floor}`);
}
